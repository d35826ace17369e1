/**
 * Certificate minting for the negative identity checks (items 6, 9, 10): client SVIDs under the
 * WFM's own CA (when the vendor lends it) or under a root the WFM has never seen. Each flaw maps
 * onto one knob of `mintCertificate`, so a refused certificate is refused for that reason only.
 */
import { readFile } from "node:fs/promises";
import {
  certificateFingerprint,
  createRootCa,
  derToPem,
  type Issuer,
  importPrivateKeyPem,
  type MintOptions,
  mintCertificate,
  pemToDer,
} from "@margo/proto/identity";
import type { Credentials, Minter } from "../context.js";

export type Flaw = NonNullable<Parameters<Minter["clientSvid"]>[1]>;

const DAY_MS = 24 * 3600 * 1000;

function trustDomainOf(spiffeId: string): string {
  return spiffeId.replace(/^spiffe:\/\//, "").split("/")[0] ?? "";
}

/** mintCertificate options of a client SVID with at most one flaw. */
export function svidOptions(issuer: Issuer, spiffeId: string, flaw?: Flaw): MintOptions {
  const now = Date.now();
  const base: MintOptions = {
    subject: `O=${trustDomainOf(spiffeId)}, CN=margo conformance client`,
    issuer,
    ca: false,
    keyUsage: ["digitalSignature"],
    extendedKeyUsage: ["clientAuth", "serverAuth"],
    uris: [spiffeId],
    lifetimeSeconds: 3600,
  };
  switch (flaw) {
    case undefined:
      return base;
    case "expired":
      return { ...base, notBefore: new Date(now - 2 * DAY_MS), notAfter: new Date(now - DAY_MS) };
    case "not-yet-valid":
      return { ...base, notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 2 * DAY_MS) };
    case "ca-true":
      return { ...base, ca: true };
    case "key-cert-sign":
      return { ...base, keyUsage: ["digitalSignature", "keyCertSign"] };
    case "two-uris":
      return { ...base, uris: [spiffeId, `${spiffeId}-twin`] };
    case "no-uri":
      return { ...base, uris: [] };
    case "rsa-2048":
      return { ...base, keyAlgorithm: "RSA-2048" };
  }
}

/** A Minter that can also mint a valid SVID expiring at a chosen time (item 13's resumption check). */
export interface ExtendedMinter extends Minter {
  shortLivedSvid(spiffeId: string, notAfter: Date): Promise<Credentials>;
}

/** A Minter signing with `issuer`; `extraChain` (intermediates) follows the leaf. */
export function minterFor(
  trustDomain: string,
  issuer: Issuer,
  extraChain: readonly Buffer[],
): ExtendedMinter {
  const creds = async (o: MintOptions): Promise<Credentials> => {
    const m = await mintCertificate(o);
    return {
      chainPem: [m.certPem, ...extraChain.map((d) => derToPem(d))].join(""),
      keyPem: m.keyPem,
    };
  };
  return {
    trustDomain,
    clientSvid: (spiffeId, flaw) => creds(svidOptions(issuer, spiffeId, flaw)),
    shortLivedSvid: (spiffeId, notAfter) =>
      creds({
        ...svidOptions(issuer, spiffeId),
        notBefore: new Date(Date.now() - 60_000),
        notAfter,
      }),
  };
}

/** The trust domain the foreign minter's root claims (never the WFM's). */
export const FOREIGN_TRUST_DOMAIN = "conformance-foreign.example";

/**
 * A root CA of its own, never in any WFM bundle: SVIDs it mints are refused whatever trust
 * domain they name (foreign, or the WFM's own under an untrusted root).
 */
export async function foreignMinter(): Promise<Minter> {
  const root = await createRootCa({
    trustDomain: FOREIGN_TRUST_DOMAIN,
    commonName: "untrusted root",
  });
  return minterFor(
    FOREIGN_TRUST_DOMAIN,
    { certDer: root.certDer, privateKey: root.keys.privateKey },
    [],
  );
}

/**
 * Mints with the WFM's own CA (cert + key files). When that CA is not itself an anchor of the
 * bundle it is an intermediate and goes into the chain (item 12).
 */
export async function domainMinter(
  trustDomain: string,
  ca: { certFile: string; keyFile: string },
  anchors: readonly Buffer[],
): Promise<ExtendedMinter> {
  const [certPem, keyPem] = await Promise.all([
    readFile(ca.certFile, "utf8"),
    readFile(ca.keyFile, "utf8"),
  ]);
  const certDer = pemToDer(certPem)[0];
  if (!certDer) throw new Error(`${ca.certFile}: no certificate in it`);
  const privateKey = await importPrivateKeyPem(keyPem);
  const anchorFps = new Set(anchors.map((a) => certificateFingerprint(a)));
  const extra = anchorFps.has(certificateFingerprint(certDer)) ? [] : [certDer];
  return minterFor(trustDomain, { certDer, privateKey }, extra);
}
