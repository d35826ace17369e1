import {
  createRootCa,
  type Issuer,
  type MintOptions,
  mintCertificate,
  mintSvid,
  operatorSpiffeId,
  wfmClientSpiffeId,
} from "@margo/proto/identity";
import type { ClientPem } from "./mtls-client.js";
import { TEST_TRUST_DOMAIN, TEST_WFM_ID } from "./start-wfm.js";

const HOUR = 3600_000;

/** Client PEM for a minted leaf (no intermediates: every test CA here is a root in the bundle). */
function pem(c: { certPem: string; keyPem: string }): ClientPem {
  return { certificateChainPem: c.certPem, privateKeyPem: c.keyPem };
}

/** A leaf signed by the WFM's own CA, so only the SPIFFE checks can refuse it. */
async function leaf(issuer: Issuer, over: Partial<MintOptions>): Promise<ClientPem> {
  return pem(
    await mintCertificate({
      subject: "O=example.org, CN=broken",
      issuer,
      ca: false,
      keyUsage: ["digitalSignature"],
      extendedKeyUsage: ["serverAuth", "clientAuth"],
      uris: [wfmClientSpiffeId(TEST_TRUST_DOMAIN, TEST_WFM_ID, "client-a")],
      ...over,
    }),
  );
}

/**
 * Every way a client certificate must be refused (items 6, 9, 10, 11), each with the reason a
 * test expects. `tlsLayer` marks those OpenSSL itself refuses before our SPIFFE check runs.
 */
export async function brokenClientCertificates(
  issuer: Issuer,
): Promise<
  Array<{ name: string; item: number; pem: ClientPem; rule?: string; tlsLayer?: boolean }>
> {
  const now = Date.now();
  const foreignRoot = await createRootCa({ trustDomain: TEST_TRUST_DOMAIN });
  const id = wfmClientSpiffeId(TEST_TRUST_DOMAIN, TEST_WFM_ID, "client-a");
  return [
    {
      name: "another WFM's client",
      item: 6,
      pem: pem(
        await mintSvid({
          issuer,
          spiffeId: wfmClientSpiffeId(TEST_TRUST_DOMAIN, "other-wfm", "client-a"),
        }),
      ),
      rule: "identity.foreign-wfm",
    },
    {
      name: "an operator SVID",
      item: 6,
      pem: pem(await mintSvid({ issuer, spiffeId: operatorSpiffeId(TEST_TRUST_DOMAIN, "admin") })),
      rule: "identity.not-wfm-client",
    },
    {
      name: "the WFM's own ID",
      item: 6,
      pem: pem(
        await mintSvid({
          issuer,
          spiffeId: `spiffe://${TEST_TRUST_DOMAIN}/margo/wfm/${TEST_WFM_ID}`,
        }),
      ),
      rule: "identity.not-wfm-client",
    },
    {
      name: "a client path with an extra segment",
      item: 6,
      pem: pem(await mintSvid({ issuer, spiffeId: `${id}/extra` })),
      rule: "identity.not-wfm-client",
    },
    {
      name: "a foreign trust domain",
      item: 10,
      pem: await leaf(issuer, { uris: [wfmClientSpiffeId("evil.org", TEST_WFM_ID, "client-a")] }),
      rule: "svid.foreign-trust-domain",
    },
    {
      name: "a cA=true leaf",
      item: 10,
      pem: await leaf(issuer, { ca: true }),
      rule: "svid.ca-leaf",
    },
    {
      name: "a keyCertSign leaf",
      item: 10,
      pem: await leaf(issuer, { keyUsage: ["digitalSignature", "keyCertSign"] }),
      rule: "svid.key-cert-sign",
    },
    {
      name: "a cRLSign leaf",
      item: 10,
      pem: await leaf(issuer, { keyUsage: ["digitalSignature", "cRLSign"] }),
      rule: "svid.crl-sign",
    },
    {
      name: "no URI SAN",
      item: 10,
      pem: await leaf(issuer, { uris: [] }),
      rule: "svid.no-uri-san",
    },
    {
      name: "two URI SANs",
      item: 10,
      pem: await leaf(issuer, {
        uris: [id, wfmClientSpiffeId(TEST_TRUST_DOMAIN, TEST_WFM_ID, "client-b")],
      }),
      rule: "svid.multiple-uri-sans",
    },
    {
      name: "a non-spiffe URI",
      item: 10,
      pem: await leaf(issuer, { uris: ["https://example.org/margo/wfm/wfm-test/client/client-a"] }),
      rule: "svid.not-spiffe",
    },
    {
      name: "the root path",
      item: 10,
      pem: await leaf(issuer, { uris: [`spiffe://${TEST_TRUST_DOMAIN}`] }),
      rule: "svid.root-path",
    },
    {
      name: "an RSA-2048 key",
      item: 11,
      pem: await leaf(issuer, { keyAlgorithm: "RSA-2048" }),
      rule: "svid.weak-key",
    },
    {
      name: "an expired SVID",
      item: 9,
      pem: await leaf(issuer, {
        notBefore: new Date(now - 3 * HOUR),
        notAfter: new Date(now - 2 * HOUR),
      }),
      tlsLayer: true,
    },
    {
      name: "a not-yet-valid SVID",
      item: 9,
      pem: await leaf(issuer, {
        notBefore: new Date(now + 2 * HOUR),
        notAfter: new Date(now + 3 * HOUR),
      }),
      tlsLayer: true,
    },
    {
      name: "an SVID from a foreign CA",
      item: 9,
      pem: pem(
        await mintSvid({
          issuer: { certDer: foreignRoot.certDer, privateKey: foreignRoot.keys.privateKey },
          spiffeId: id,
        }),
      ),
      tlsLayer: true,
    },
  ];
}
