import {
  createIntermediateCa,
  createRootCa,
  type Issuer,
  type MintedCertificate,
  mintCertificate,
  mintSvid,
  wfmClientSpiffeId,
  wfmSpiffeId,
} from "@margo/proto/identity";
import type { ServerIdentity } from "../context.js";

/**
 * The instrumented WFM's own trust domain: a root, an intermediate that issues the device's client
 * SVIDs (so a device must send leaf + intermediate, item 12), the WFM's server SVID, and one
 * deliberately wrong server identity per ServerIdentity case (items 8, 9, 10, 18). Everything is
 * minted once at start (EC P-256, a few ms each) so presentIdentity never waits on key generation.
 */
export interface HarnessPki {
  trustDomain: string;
  wfmSpiffeId: string;
  root: MintedCertificate;
  intermediate: MintedCertificate;
  /** The root of `untrusted-ca`: never given to the device, usable as a rotation target. */
  otherRoot: MintedCertificate;
  server: Record<ServerIdentity, { certPem: string; keyPem: string }>;
  /** A fresh client SVID (leaf + intermediate PEM) for one client scope. */
  mintClient(clientId: string): Promise<{ spiffeId: string; chainPem: string; keyPem: string }>;
}

const LOOPBACK = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };

const issuerOf = (c: MintedCertificate): Issuer => ({
  certDer: c.certDer,
  privateKey: c.keys.privateKey,
});

export async function createHarnessPki(trustDomain: string, wfmId: string): Promise<HarnessPki> {
  const spiffeId = wfmSpiffeId(trustDomain, wfmId);
  const root = await createRootCa({ trustDomain, commonName: "conformance root" });
  const otherRoot = await createRootCa({ trustDomain, commonName: "conformance untrusted root" });
  const intermediate = await createIntermediateCa({
    issuer: issuerOf(root),
    trustDomain,
    commonName: "conformance client issuer",
  });
  const good = await mintSvid({ issuer: issuerOf(root), spiffeId, ...LOOPBACK });
  const wrongId = await mintSvid({
    issuer: issuerOf(root),
    spiffeId: wfmSpiffeId(trustDomain, `${wfmId}-impostor`),
    ...LOOPBACK,
  });
  const untrusted = await mintSvid({ issuer: issuerOf(otherRoot), spiffeId, ...LOOPBACK });
  const hourMs = 3_600_000;
  const expired = await mintSvid({
    issuer: issuerOf(root),
    spiffeId,
    notBefore: new Date(Date.now() - 2 * hourMs),
    notAfter: new Date(Date.now() - hourMs),
    ...LOOPBACK,
  });
  // A leaf that says it is a CA: otherwise a perfect WFM SVID (item 10).
  const caLeaf = await mintCertificate({
    subject: "CN=conformance ca-leaf",
    issuer: issuerOf(root),
    ca: true,
    keyUsage: ["digitalSignature", "keyCertSign"],
    extendedKeyUsage: ["serverAuth", "clientAuth"],
    uris: [spiffeId],
    ...LOOPBACK,
  });
  const pair = (c: MintedCertificate) => ({ certPem: c.certPem, keyPem: c.keyPem });
  return {
    trustDomain,
    wfmSpiffeId: spiffeId,
    root,
    intermediate,
    otherRoot,
    server: {
      good: pair(good),
      "wrong-wfm-id": pair(wrongId),
      "untrusted-ca": pair(untrusted),
      expired: pair(expired),
      "ca-leaf": pair(caLeaf),
    },
    async mintClient(clientId) {
      const id = wfmClientSpiffeId(trustDomain, wfmId, clientId);
      const leaf = await mintSvid({ issuer: issuerOf(intermediate), spiffeId: id });
      return {
        spiffeId: id,
        chainPem: `${leaf.certPem.trimEnd()}\n${intermediate.certPem.trimEnd()}\n`,
        keyPem: leaf.keyPem,
      };
    },
  };
}
