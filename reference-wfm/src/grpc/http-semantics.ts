/**
 * The two HTTP header rules the WorkloadManagement binding carries as request fields. The gRPC
 * binding promises REST semantics, so If-None-Match and Accept are judged exactly as RFC 9110
 * judges the headers they stand for.
 */

/**
 * RFC 9110 13.1.2: If-None-Match uses weak comparison over a comma-separated list of entity
 * tags, and `*` matches any current representation.
 */
export function ifNoneMatchHits(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const strip = (t: string): string => (t.startsWith("W/") ? t.slice(2) : t);
  const current = strip(etag.trim());
  return ifNoneMatch
    .split(",")
    .map((t) => t.trim())
    .some((t) => t === "*" || (t !== "" && strip(t) === current));
}

/**
 * RFC 9110 12.5.1: true when the Accept field allows `mediaType` (exact, `type/*` or `*\/*`,
 * parameters ignored, q=0 excludes). An absent or empty field accepts anything.
 */
export function acceptAllows(accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined || accept.trim() === "") return true;
  const [wantType, wantSub] = mediaType.toLowerCase().split("/");
  let best: { specificity: number; q: number } | undefined;
  for (const range of accept.split(",")) {
    const [rawType = "", ...params] = range.split(";").map((p) => p.trim());
    const [type, sub] = rawType.toLowerCase().split("/");
    if (type === undefined || sub === undefined) continue;
    let specificity: number;
    if (type === wantType && sub === wantSub) specificity = 2;
    else if (type === wantType && sub === "*") specificity = 1;
    else if (type === "*" && sub === "*") specificity = 0;
    else continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split("=").map((s) => s.trim());
      if (k?.toLowerCase() === "q" && v !== undefined) q = Number(v);
    }
    if (Number.isNaN(q)) q = 0;
    if (best === undefined || specificity > best.specificity) best = { specificity, q };
  }
  return best !== undefined && best.q > 0;
}
