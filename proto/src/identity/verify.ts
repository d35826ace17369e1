import {
  type CertificateFacts,
  CertificateParseError,
  keyInfoOf,
  namesIssuer,
  publicKeyOf,
  readCertificate,
  signedBy,
} from "./der-certificate.js";
import { certificateFingerprint } from "./pem.js";
import { parseSpiffeId, type SpiffeId, SpiffeIdError } from "./spiffe-id.js";

/**
 * The authoritative X.509-SVID check (digest 5.2, items 9-11). Node's TLS stack also builds a
 * chain, but it knows nothing of SPIFFE: it would accept a CA-flagged leaf, two URI SANs or a
 * foreign trust domain. Every edge (REST, gRPC, the agent, the conformance suite) calls this.
 */

/** Stable rule ids, in the order the checks run. */
export const SVID_RULES = [
  "svid.empty-chain",
  "svid.malformed",
  "svid.no-uri-san",
  "svid.multiple-uri-sans",
  "svid.not-spiffe",
  "svid.malformed-spiffe-id",
  "svid.root-path",
  "svid.foreign-trust-domain",
  "svid.no-anchors",
  "svid.untrusted-chain",
  "svid.bad-signature",
  "svid.intermediate-not-ca",
  "svid.not-yet-valid",
  "svid.expired",
  "svid.ca-leaf",
  "svid.key-cert-sign",
  "svid.crl-sign",
  "svid.weak-key",
] as const;
export type SvidRule = (typeof SVID_RULES)[number];

/** Why an SVID was refused; `rule` is one of SVID_RULES and never changes meaning. */
export class SvidVerificationError extends Error {
  override readonly name = "SvidVerificationError";
  constructor(
    readonly rule: SvidRule,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyOptions {
  /** The verifier's own trust domain; the SVID must belong to it (digest 5.2). */
  trustDomain: string;
  now?: Date;
  /** Tolerated clock skew on both validity bounds (digest 5.2 allows a small bounded one). */
  skewSeconds?: number;
}

export interface VerifiedSvid {
  spiffeId: string;
  id: SpiffeId;
  /** The leaf's notAfter. */
  notAfter: Date;
  /** The earliest notAfter on the path: when this verification stops holding. */
  pathNotAfter: Date;
  /** The latest notBefore on the path: before it, this verification does not hold. */
  pathNotBefore: Date;
  /** SHA-256 (hex) of the anchor the chain ended at. */
  anchorFingerprint: string;
}

function fail(rule: SvidRule, message: string): never {
  throw new SvidVerificationError(rule, message);
}

function parse(der: Uint8Array, what: string): CertificateFacts {
  try {
    return readCertificate(der);
  } catch (e) {
    if (e instanceof CertificateParseError)
      fail("svid.malformed", `${what} is not a DER certificate: ${e.message}`);
    throw e;
  }
}

/**
 * A parsed, reusable set of trust anchors (the x509-svid keys of the current bundle). Building it
 * once per bundle change keeps each verification to the leaf's own parse and signature checks.
 */
export class TrustAnchors {
  readonly anchors: readonly (CertificateFacts & { fingerprint: string })[];
  private readonly fingerprints: Set<string>;
  constructor(anchorsDer: readonly Uint8Array[]) {
    this.anchors = anchorsDer.map((d, i) => {
      const facts = parse(d, `anchor ${i}`);
      publicKeyOf(facts); // parse the key now, not on the first connection
      return Object.assign(facts, { fingerprint: certificateFingerprint(d) });
    });
    this.fingerprints = new Set(this.anchors.map((a) => a.fingerprint));
  }
  has(fingerprint: string): boolean {
    return this.fingerprints.has(fingerprint);
  }
  get size(): number {
    return this.anchors.length;
  }
}

const MAX_PATH = 8;

function keyStrengthProblem(c: CertificateFacts): string | undefined {
  const key = keyInfoOf(c);
  switch (key.type) {
    case "ec":
      return key.curve === "P-256" || key.curve === "P-384"
        ? undefined
        : `an EC key on curve ${key.curve}; P-256 or P-384 required`;
    case "rsa":
      return key.bits >= 3072 ? undefined : `a ${key.bits}-bit RSA key; at least 3072 required`;
    case "ed25519":
      return undefined;
    default:
      return `an unsupported key (${key.oid})`;
  }
}

/**
 * verifySvid checks an X.509-SVID chain (leaf first, then any intermediates) against trust anchors
 * in the order digest 5.2 gives: the SPIFFE ID from the single URI SAN and its trust domain; a
 * path to any anchor (item 9), verifying every signature and never fetching anything (no AIA); the
 * validity of every certificate on the path; the leaf constraints (item 10); key strength (item
 * 11). Throws SvidVerificationError; returns the ID on success. Pass a TrustAnchors built once
 * per bundle: a verification then costs one leaf parse and one signature check per link.
 */
export function verifySvid(
  chainDer: readonly Uint8Array[],
  anchors: readonly Uint8Array[] | TrustAnchors,
  opts: VerifyOptions,
): VerifiedSvid {
  const leafDer = chainDer[0];
  if (leafDer === undefined) fail("svid.empty-chain", "no certificate was presented");
  const leaf = parse(leafDer, "leaf");

  // 1. SPIFFE ID from the one URI SAN, in our trust domain.
  if (leaf.uris.length === 0) fail("svid.no-uri-san", "the leaf has no URI SAN");
  if (leaf.uris.length > 1)
    fail(
      "svid.multiple-uri-sans",
      `the leaf has ${leaf.uris.length} URI SANs; exactly one allowed`,
    );
  const uri = leaf.uris[0] ?? "";
  if (!uri.startsWith("spiffe://"))
    fail("svid.not-spiffe", `URI SAN ${JSON.stringify(uri)} is not a spiffe:// ID`);
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uri);
  } catch (e) {
    if (!(e instanceof SpiffeIdError)) throw e;
    return fail("svid.malformed-spiffe-id", `${e.rule}: ${e.message}`);
  }
  if (id.segments.length === 0)
    fail("svid.root-path", `${uri} is a trust domain root ID; an SVID needs a path`);
  if (id.trustDomain !== opts.trustDomain)
    fail(
      "svid.foreign-trust-domain",
      `${uri} is in trust domain ${id.trustDomain}, not ${opts.trustDomain}`,
    );

  // 2. A path to any anchor through the presented intermediates.
  const set = anchors instanceof TrustAnchors ? anchors : new TrustAnchors(anchors);
  if (set.size === 0) fail("svid.no-anchors", "the trust bundle holds no anchor");
  const intermediates = chainDer.slice(1).map((d, i) => parse(d, `intermediate ${i + 1}`));
  const path: CertificateFacts[] = [leaf];
  const used = new Set<number>();
  let anchorFingerprint: string | undefined;
  let current = leaf;
  let sawBadSignature = false;
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_PATH)
      fail("svid.untrusted-chain", `no anchor within ${MAX_PATH} certificates`);
    // A presenter may include the root itself; it is trusted only because it is one of ours.
    if (current !== leaf && set.has(certificateFingerprint(current.der))) {
      anchorFingerprint = certificateFingerprint(current.der);
      break;
    }
    for (const a of set.anchors) {
      if (!namesIssuer(current, a)) continue;
      if (signedBy(current, publicKeyOf(a))) {
        path.push(a);
        anchorFingerprint = a.fingerprint;
        break;
      }
      sawBadSignature = true;
    }
    if (anchorFingerprint !== undefined) break;
    let next: CertificateFacts | undefined;
    for (const [i, c] of intermediates.entries()) {
      if (used.has(i) || !namesIssuer(current, c)) continue;
      if (!signedBy(current, publicKeyOf(c))) {
        sawBadSignature = true;
        continue;
      }
      if (!c.ca || (c.keyUsage && !c.keyUsage.keyCertSign))
        fail(
          "svid.intermediate-not-ca",
          `intermediate ${i + 1} is not a CA that may sign certificates`,
        );
      used.add(i);
      next = c;
      break;
    }
    if (!next) {
      if (sawBadSignature)
        fail("svid.bad-signature", `a signature on the chain of ${uri} does not verify`);
      fail("svid.untrusted-chain", `${uri} does not chain to any anchor of the trust bundle`);
    }
    path.push(next);
    current = next;
  }

  // 3. Validity of every certificate on the path.
  const now = (opts.now ?? new Date()).getTime();
  const skew = (opts.skewSeconds ?? 0) * 1000;
  let pathNotAfter = leaf.notAfter;
  let pathNotBefore = leaf.notBefore;
  for (const [i, c] of path.entries()) {
    const what = i === 0 ? "the leaf" : `CA certificate ${i} on the path`;
    if (c.notBefore.getTime() - skew > now)
      fail("svid.not-yet-valid", `${what} is not valid before ${c.notBefore.toISOString()}`);
    if (c.notAfter.getTime() + skew < now)
      fail("svid.expired", `${what} expired at ${c.notAfter.toISOString()}`);
    if (c.notAfter < pathNotAfter) pathNotAfter = c.notAfter;
    if (c.notBefore > pathNotBefore) pathNotBefore = c.notBefore;
  }

  // 4. Leaf constraints (item 10).
  if (leaf.ca) fail("svid.ca-leaf", "the leaf has basicConstraints cA=true");
  if (leaf.keyUsage?.keyCertSign) fail("svid.key-cert-sign", "the leaf has keyUsage keyCertSign");
  if (leaf.keyUsage?.cRLSign) fail("svid.crl-sign", "the leaf has keyUsage cRLSign");

  // 5. Algorithms (item 11): every key on the path.
  for (const [i, c] of path.entries()) {
    const problem = keyStrengthProblem(c);
    if (problem) fail("svid.weak-key", `${i === 0 ? "the leaf" : `CA ${i}`} has ${problem}`);
  }

  return {
    spiffeId: uri,
    id,
    notAfter: leaf.notAfter,
    pathNotAfter,
    pathNotBefore,
    anchorFingerprint,
  };
}
