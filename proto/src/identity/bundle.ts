import { X509Certificate as NodeCertificate } from "node:crypto";
import type { Jwk, SpiffeBundle } from "../gen/margo/model/v1/trust.js";
import { decodeSpiffeBundle, encodeSpiffeBundle } from "../wire/trust-bundle.js";

/**
 * Trust anchors <-> the SPIFFE bundle (a JWK Set, digest 5.5). The bundle carries only anchors;
 * intermediates travel with the SVIDs. Encoding goes through the wire codec so the served bytes are
 * the same canonical JSON everyone else produces and parses.
 */

/** The bundle could not be turned into anchors (item 21: refuse it and keep the previous one). */
export class BundleError extends Error {
  override readonly name = "BundleError";
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** One `x509-svid` JWK for an anchor: its public key members plus the certificate in `x5c`. */
export function anchorJwk(der: Uint8Array): Jwk {
  const cert = new NodeCertificate(der);
  const jwk = cert.publicKey.export({ format: "jwk" });
  const out: Jwk = {
    kty: jwk.kty ?? "",
    use: "x509-svid",
    x5c: [Buffer.from(der).toString("base64")],
  };
  if (jwk.kty === "EC") {
    out.crv = jwk.crv;
    out.x = jwk.x;
    out.y = jwk.y;
  } else if (jwk.kty === "RSA") {
    out.n = jwk.n;
    out.e = jwk.e;
  }
  return out;
}

/** Build the bundle model for a set of anchors (issuing anchor first, by convention). */
export function bundleFromAnchors(
  anchorsDer: readonly Uint8Array[],
  opts: { sequence?: bigint; refreshHintSeconds?: number },
): SpiffeBundle {
  return {
    ...(opts.sequence !== undefined ? { spiffeSequence: opts.sequence } : {}),
    ...(opts.refreshHintSeconds !== undefined
      ? { spiffeRefreshHint: BigInt(opts.refreshHintSeconds) }
      : {}),
    keys: anchorsDer.map(anchorJwk),
  };
}

/** The exact bytes of a bundle document for these anchors (canonical JSON). */
export function encodeAnchorsBundle(
  anchorsDer: readonly Uint8Array[],
  opts: { sequence?: bigint; refreshHintSeconds?: number },
): Buffer {
  return Buffer.from(encodeSpiffeBundle(bundleFromAnchors(anchorsDer, opts)));
}

/**
 * The X.509 anchors of a bundle. Keys whose `use` is not `x509-svid` (jwt-svid keys) are ignored
 * (item 20). An x509-svid key must carry exactly one certificate whose public key equals the JWK's
 * own members, so a bundle cannot advertise one key and smuggle in another certificate.
 */
export function anchorsFromBundle(bundle: SpiffeBundle): Buffer[] {
  const out: Buffer[] = [];
  for (const [i, k] of bundle.keys.entries()) {
    if (k.use !== "x509-svid") continue;
    if (k.x5c.length !== 1)
      throw new BundleError("bundle.x5c-count", `keys/${i}: x5c must hold exactly one certificate`);
    const der = Buffer.from(k.x5c[0] ?? "", "base64");
    let expected: Jwk;
    try {
      expected = anchorJwk(der);
    } catch (e) {
      throw new BundleError("bundle.x5c-certificate", `keys/${i}: x5c is not a certificate: ${e}`);
    }
    const members = ["kty", "crv", "x", "y", "n", "e"] as const;
    for (const m of members)
      if (k[m] !== expected[m])
        throw new BundleError(
          "bundle.key-mismatch",
          `keys/${i}: member ${m} does not match the certificate's public key`,
        );
    out.push(der);
  }
  if (out.length === 0)
    throw new BundleError("bundle.no-x509-anchor", "the bundle has no x509-svid key (fail closed)");
  return out;
}

/** Parse bundle JSON bytes to anchors; throws BundleError (the decoder's problems in the message). */
export function anchorsFromBundleJson(input: Uint8Array | string): {
  anchors: Buffer[];
  bundle: SpiffeBundle;
} {
  const d = decodeSpiffeBundle(input);
  if (!d.value) {
    const p = d.problems.find((x) => x.severity === "error") ?? d.problems[0];
    throw new BundleError(
      p?.rule ?? "bundle.invalid",
      p ? `${p.pointer}: ${p.message}` : "invalid",
    );
  }
  return { anchors: anchorsFromBundle(d.value), bundle: d.value };
}
