import type { Jwk, SpiffeBundle, TrustDiscoveryDocument } from "../gen/margo/model/v1/trust.js";
import { pointer } from "../problem.js";
import { type Decoded, decodeJson, encodeJson, isUri } from "./codec.js";
import { isJsonObject, type JsonValue } from "./json-value.js";
import type { Reader } from "./reader.js";

/** readDiscoveryDocument maps `/.well-known/margo`; unknown members are tolerated (warnings). */
export function readDiscoveryDocument(
  tree: JsonValue,
  r: Reader,
): TrustDiscoveryDocument | undefined {
  const obj = r.object(tree, "", "discovery document");
  if (!obj) return undefined;
  r.members(obj, "", { known: ["trustDomain", "trustBundleUri"], closed: false });
  const trustDomain = r.string(obj, "trustDomain", "", { required: true });
  let trustBundleUri = r.string(obj, "trustBundleUri", "", { required: true });
  if (trustBundleUri !== undefined) {
    if (!isUri(trustBundleUri)) {
      r.error(
        "wire.format",
        pointer("trustBundleUri"),
        `${JSON.stringify(trustBundleUri)} is not an absolute URI`,
      );
      trustBundleUri = undefined;
    } else if (!/^https:/i.test(trustBundleUri)) {
      // The client MUST reject a non-https bundle URI (trust-bundle API, DiscoveryDocument).
      r.error(
        "wire.https",
        pointer("trustBundleUri"),
        `${JSON.stringify(trustBundleUri)} is not an https URL`,
      );
      trustBundleUri = undefined;
    }
  }
  if (trustDomain === undefined || trustBundleUri === undefined) return undefined;
  return { trustDomain, trustBundleUri };
}

const JWK_STRINGS = ["use", "kid", "crv", "x", "y", "n", "e"] as const;

function readJwk(r: Reader, v: JsonValue, at: string): Jwk | undefined {
  const obj = r.object(v, at, "key");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["kty", ...JWK_STRINGS, "x5c"], closed: false });
  const kty = r.string(obj, "kty", at, { required: true });
  const jwk: Jwk = { kty: kty ?? "", x5c: r.strings(obj, "x5c", at) ?? [] };
  for (const k of JWK_STRINGS) {
    const s = r.string(obj, k, at);
    if (s !== undefined) jwk[k] = s;
  }
  return kty === undefined ? undefined : jwk;
}

/**
 * readSpiffeBundle maps a SPIFFE bundle (JWK Set). A bundle without any x509-svid key is an
 * error: the client MUST reject it and keep its previous anchors (fail closed, checklist 21).
 */
export function readSpiffeBundle(tree: JsonValue, r: Reader): SpiffeBundle | undefined {
  const obj = r.object(tree, "", "SPIFFE bundle");
  if (!obj) return undefined;
  r.members(obj, "", { known: ["spiffe_sequence", "spiffe_refresh_hint", "keys"], closed: false });
  const spiffeSequence = r.uint64(obj, "spiffe_sequence", "", { min: 0n });
  let spiffeRefreshHint: bigint | undefined;
  const hint = r.present(obj, "spiffe_refresh_hint", "", false);
  if (hint !== undefined) {
    if ((typeof hint === "number" && Number.isSafeInteger(hint)) || typeof hint === "bigint") {
      spiffeRefreshHint = BigInt(hint);
      if (spiffeRefreshHint < 0n || spiffeRefreshHint >= 1n << 63n) {
        r.error(
          "wire.type",
          pointer("spiffe_refresh_hint"),
          "must be a non-negative 64-bit integer",
        );
        spiffeRefreshHint = undefined;
      }
    } else
      r.error("wire.type", pointer("spiffe_refresh_hint"), "must be an integer number of seconds");
  }
  const items = r.array(obj, "keys", "", { required: true });
  const keys: Jwk[] = [];
  let ok = items !== undefined;
  items?.forEach((item, i) => {
    const k = readJwk(r, item, pointer("keys", i));
    if (k) keys.push(k);
    else ok = false;
  });
  // Judged on the raw items so an anchor that is broken elsewhere is not also called missing.
  const isAnchor = (k: JsonValue) => isJsonObject(k) && k.use === "x509-svid";
  if (items !== undefined && !items.some(isAnchor)) {
    r.error(
      "wire.no-x509-anchor",
      pointer("keys"),
      "no key has use x509-svid: the bundle has no trust anchor",
    );
    ok = false;
  }
  if (!ok) return undefined;
  return {
    ...(spiffeSequence !== undefined ? { spiffeSequence } : {}),
    ...(spiffeRefreshHint !== undefined ? { spiffeRefreshHint } : {}),
    keys,
  };
}

function writeDiscoveryDocument(d: TrustDiscoveryDocument): JsonValue {
  return { trustDomain: d.trustDomain, trustBundleUri: d.trustBundleUri };
}

function writeSpiffeBundle(b: SpiffeBundle): JsonValue {
  return {
    spiffe_sequence: b.spiffeSequence,
    spiffe_refresh_hint: b.spiffeRefreshHint,
    keys: b.keys.map((k) => ({
      kty: k.kty,
      use: k.use,
      kid: k.kid,
      crv: k.crv,
      x: k.x,
      y: k.y,
      n: k.n,
      e: k.e,
      x5c: k.x5c.length ? k.x5c : undefined,
    })),
  } as JsonValue;
}

/** encodeDiscoveryDocument writes `/.well-known/margo` as canonical JSON. */
export function encodeDiscoveryDocument(value: TrustDiscoveryDocument): Uint8Array {
  return encodeJson("discovery document", writeDiscoveryDocument(value), readDiscoveryDocument);
}

/** decodeDiscoveryDocument reads `/.well-known/margo`; never throws. */
export function decodeDiscoveryDocument(
  input: Uint8Array | string,
): Decoded<TrustDiscoveryDocument> {
  return decodeJson(input, readDiscoveryDocument);
}

/** encodeSpiffeBundle writes a SPIFFE bundle as canonical JSON (snake_case SPIFFE members). */
export function encodeSpiffeBundle(value: SpiffeBundle): Uint8Array {
  return encodeJson("SPIFFE bundle", writeSpiffeBundle(value), readSpiffeBundle);
}

/** decodeSpiffeBundle reads a SPIFFE bundle; never throws. */
export function decodeSpiffeBundle(input: Uint8Array | string): Decoded<SpiffeBundle> {
  return decodeJson(input, readSpiffeBundle);
}
