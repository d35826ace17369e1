/**
 * Content negotiation and conditional-request rules of RFC 9110, reduced to what the six rc.3
 * operations need. Kept pure so every edge case is a unit test, not a TLS round trip.
 */

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

/** Parse a q-value; anything malformed counts as absent (q=1 is the RFC default). */
function parseQ(params: string[]): number {
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq < 0) continue;
    if (p.slice(0, eq).trim().toLowerCase() !== "q") continue;
    const v = p.slice(eq + 1).trim();
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) return 1;
    return Number(v);
  }
  return 1;
}

function parseMediaRanges(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of header.split(",")) {
    const [range = "", ...params] = part.split(";");
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*$/.exec(range);
    if (!m?.[1] || !m[2]) continue;
    out.push({ type: m[1].toLowerCase(), subtype: m[2].toLowerCase(), q: parseQ(params) });
  }
  return out;
}

/**
 * Whether an Accept header admits `mediaType` (items 37-38). Absent or empty admits everything.
 * The most specific matching range decides (RFC 9110 12.5.1), so `*\/*, x/y;q=0` refuses x/y.
 * Parameters other than q are ignored: the manifest type has none a client could ask for.
 */
export function accepts(acceptHeader: string | undefined, mediaType: string): boolean {
  if (acceptHeader === undefined || acceptHeader.trim() === "") return true;
  const [type = "", subtype = ""] = mediaType.toLowerCase().split("/");
  let best: { specificity: number; q: number } | undefined;
  for (const r of parseMediaRanges(acceptHeader)) {
    let specificity: number;
    if (r.type === type && r.subtype === subtype) specificity = 2;
    else if (r.type === type && r.subtype === "*") specificity = 1;
    else if (r.type === "*" && r.subtype === "*") specificity = 0;
    else continue;
    if (!best || specificity > best.specificity) best = { specificity, q: r.q };
    else if (specificity === best.specificity) best.q = Math.max(best.q, r.q);
  }
  return best !== undefined && best.q > 0;
}

/**
 * Whether Accept-Encoding admits gzip. Absent means "no preference" (RFC 9110 12.5.3), which we
 * answer with identity: compressing for a client that never asked is a needless risk.
 */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  let gzip: number | undefined;
  let star: number | undefined;
  for (const part of acceptEncoding.split(",")) {
    const [coding = "", ...params] = part.split(";");
    const name = coding.trim().toLowerCase();
    const q = parseQ(params);
    if (name === "gzip" || name === "x-gzip") gzip = Math.max(gzip ?? 0, q);
    else if (name === "*") star = q;
  }
  if (gzip !== undefined) return gzip > 0;
  return star !== undefined && star > 0;
}

/**
 * The opaque tags (quotes kept, `W/` dropped) of an If-None-Match list, or "*". A malformed field
 * yields [] so that it can never produce a 304.
 */
export function parseEntityTags(header: string): string[] | "*" {
  if (header.trim() === "*") return "*";
  const tags: string[] = [];
  const isWs = (c: string | undefined) => c === " " || c === "\t";
  let i = 0;
  for (;;) {
    // Empty list elements are allowed (RFC 9110 5.6.1).
    while (i < header.length && (isWs(header[i]) || header[i] === ",")) i++;
    if (i >= header.length) return tags;
    if (header.startsWith("W/", i)) i += 2;
    if (header[i] !== '"') return [];
    const end = header.indexOf('"', i + 1);
    if (end < 0) return [];
    const tag = header.slice(i, end + 1);
    if (!/^"[\x21\x23-\x7e\x80-\xff]*"$/.test(tag)) return [];
    tags.push(tag);
    i = end + 1;
    while (i < header.length && isWs(header[i])) i++;
    if (i < header.length && header[i] !== ",") return [];
  }
}

/**
 * RFC 9110 13.1.2: If-None-Match uses the weak comparison, so `W/"x"` matches `"x"`. `etag` is
 * the current strong validator, quoted. Absent header never matches.
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = parseEntityTags(header);
  if (tags === "*") return true;
  return tags.includes(etag);
}
