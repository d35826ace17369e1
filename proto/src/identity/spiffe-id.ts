/**
 * SPIFFE IDs and the MIAF names built from them (digest 5.1). Parsing is strict on purpose: a
 * verifier that normalises (lower-casing, dropping a trailing slash, decoding %-escapes) could map
 * two different certificates to one principal, so every deviation is refused with a stable rule.
 */

/** A SPIFFE ID that could not be parsed or formatted; `rule` is stable for logs and tests. */
export class SpiffeIdError extends Error {
  override readonly name = "SpiffeIdError";
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** A parsed SPIFFE ID: `spiffe://<trustDomain>/<segments joined by />`. */
export interface SpiffeId {
  trustDomain: string;
  /** Path segments; empty for the trust domain's root ID (never valid on an SVID). */
  segments: string[];
  /** The exact text, which is also the canonical form (parsing refuses anything else). */
  uri: string;
}

const SCHEME = "spiffe://";
// SPIFFE trust domain names: lowercase letters, digits, dot, dash, underscore.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
// RFC 3986 unreserved; stricter than SPIFFE's path charset, as MIAF requires (item 16).
const UNRESERVED = /^[A-Za-z0-9._~-]+$/;
// SPIFFE allows at most 2048 bytes for the whole URI.
const MAX_URI_BYTES = 2048;

/** True for a SPIFFE trust domain name (lowercase letters, digits, `.`, `-`, `_`; at most 255). */
export function isValidTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN.test(td);
}

/**
 * True for a MIAF name segment (`wfm-id`, `wfm-client-id`, operator name): non-empty, RFC 3986
 * unreserved characters only, and not `.` or `..` (item 16), so it survives any URI handling.
 */
export function isValidSegment(segment: string): boolean {
  return segment !== "." && segment !== ".." && UNRESERVED.test(segment);
}

/**
 * parseSpiffeId reads a SPIFFE ID; throws SpiffeIdError (`spiffe-id.*`). Path segments must satisfy
 * the MIAF segment rule, which is stricter than SPIFFE's own (no `%`, no sub-delims).
 */
export function parseSpiffeId(uri: string): SpiffeId {
  if (Buffer.byteLength(uri, "utf8") > MAX_URI_BYTES)
    throw new SpiffeIdError("spiffe-id.too-long", "a SPIFFE ID has at most 2048 bytes");
  // Case-sensitive on purpose: SPIFFE requires the lowercase scheme in an SVID.
  if (!uri.startsWith(SCHEME))
    throw new SpiffeIdError(
      "spiffe-id.scheme",
      `${JSON.stringify(uri)} does not start with spiffe://`,
    );
  const rest = uri.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!isValidTrustDomain(trustDomain))
    throw new SpiffeIdError(
      "spiffe-id.trust-domain",
      `${JSON.stringify(trustDomain)} is not a trust domain name (lowercase letters, digits, . - _; no port, userinfo or IP literal)`,
    );
  if (slash < 0) return { trustDomain, segments: [], uri };
  const path = rest.slice(slash + 1);
  if (path === "")
    throw new SpiffeIdError("spiffe-id.trailing-slash", "the path must not end with /");
  const segments = path.split("/");
  for (const s of segments) {
    if (s === "") throw new SpiffeIdError("spiffe-id.empty-segment", "a path segment is empty");
    if (!isValidSegment(s))
      throw new SpiffeIdError(
        "spiffe-id.segment",
        `path segment ${JSON.stringify(s)} is not RFC 3986 unreserved text or is . or ..`,
      );
  }
  return { trustDomain, segments, uri };
}

/** formatSpiffeId builds `spiffe://td/a/b`; throws SpiffeIdError on an invalid part. */
export function formatSpiffeId(trustDomain: string, ...segments: string[]): string {
  const uri = SCHEME + [trustDomain, ...segments].join("/");
  parseSpiffeId(uri);
  return uri;
}

/** `spiffe://<td>/margo/wfm/<wfm-id>`: the WFM's own name (digest 5.1). */
export function wfmSpiffeId(trustDomain: string, wfmId: string): string {
  return formatSpiffeId(trustDomain, "margo", "wfm", wfmId);
}

/** `spiffe://<td>/margo/wfm/<wfm-id>/client/<client-id>`: a WFM Client (digest 5.1). */
export function wfmClientSpiffeId(trustDomain: string, wfmId: string, clientId: string): string {
  return formatSpiffeId(trustDomain, "margo", "wfm", wfmId, "client", clientId);
}

/**
 * `spiffe://<td>/operator/<name>`: the reference implementation's operator principal. It sits
 * outside `/margo/` because MIAF reserves that prefix for the names it defines.
 */
export function operatorSpiffeId(trustDomain: string, name: string): string {
  return formatSpiffeId(trustDomain, "operator", name);
}

/** What a MIAF-shaped SPIFFE ID names, when it names anything MIAF defines. */
export type MiafName =
  | { kind: "wfm"; trustDomain: string; wfmId: string }
  | { kind: "wfm-client"; trustDomain: string; wfmId: string; clientId: string };

/** Classify a parsed ID as a MIAF WFM or WFM Client name; undefined for any other shape. */
export function miafName(id: SpiffeId): MiafName | undefined {
  const [a, b, wfmId, d, clientId, ...more] = id.segments;
  if (a !== "margo" || b !== "wfm" || wfmId === undefined) return undefined;
  if (d === undefined) return { kind: "wfm", trustDomain: id.trustDomain, wfmId };
  if (d === "client" && clientId !== undefined && more.length === 0)
    return { kind: "wfm-client", trustDomain: id.trustDomain, wfmId, clientId };
  return undefined;
}
