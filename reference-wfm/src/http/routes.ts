/**
 * The six rc.3 Management Interface operations and nothing else (item 15: no alternative paths).
 * Matching is on the raw request target so percent-encoding is decoded once, per segment: an
 * encoded "/" (%2F) inside a segment is not a hierarchy separator and never matches.
 */

export type Operation =
  | { op: "putCapabilities"; deviceId: string }
  | { op: "deleteCapabilities"; deviceId: string }
  | { op: "getManifest" }
  | { op: "getDeploymentYaml"; deploymentId: string; digest: string }
  | { op: "getBundle"; digest: string }
  | { op: "reportStatus"; deploymentId: string };

/** Why a path matched no operation; the edge turns each into its problem. */
export type RouteMiss =
  /** No such path: 404 about:blank. */
  | { miss: "not-found" }
  /** Known path, other method: 405 about:blank with Allow. */
  | { miss: "method-not-allowed"; allow: string[] }
  /** Digest-addressed path whose segment is no sha256 digest: 404 with the operation's type. */
  | { miss: "bad-digest"; kind: "deployment-not-found" | "invalid-bundle" };

/** The only digest form rc.3 allows (digest 6.2). */
export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

const PREFIX = "/api/v1/";

/** Decode one path segment; undefined if empty, badly encoded or hiding a "/". */
function decodeSegment(raw: string): string | undefined {
  if (raw === "") return undefined;
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return s.includes("/") ? undefined : s;
}

function decodeAll(raws: string[]): string[] | undefined {
  const out: string[] = [];
  for (const raw of raws) {
    const s = decodeSegment(raw);
    if (s === undefined) return undefined;
    out.push(s);
  }
  return out;
}

/** Match a request; `target` is the raw request-target (query ignored). */
export function route(method: string, target: string): Operation | RouteMiss {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.startsWith(PREFIX)) return { miss: "not-found" };
  const rest = path.slice(PREFIX.length).split("/");
  const [head, ...tail] = rest;

  if (head === "capabilities") {
    // {deviceId} takes the rest of the path: gateway children are `gw/child` (digest 4.3).
    const segs = decodeAll(tail);
    if (!segs || segs.length === 0) return { miss: "not-found" };
    const deviceId = segs.join("/");
    if (method === "PUT") return { op: "putCapabilities", deviceId };
    if (method === "DELETE") return { op: "deleteCapabilities", deviceId };
    return { miss: "method-not-allowed", allow: ["PUT", "DELETE"] };
  }

  if (head === "deployments") {
    if (tail.length === 0) {
      return method === "GET"
        ? { op: "getManifest" }
        : { miss: "method-not-allowed", allow: ["GET"] };
    }
    const segs = decodeAll(tail);
    if (segs?.length !== 2) return { miss: "not-found" };
    const [deploymentId = "", second = ""] = segs;
    // `/deployments/{id}/status` also fits `/deployments/{id}/{digest}`: GET is the digest
    // template (and "status" is no digest, so 404), POST is the status template.
    if (method === "GET") {
      if (!DIGEST_PATTERN.test(second)) return { miss: "bad-digest", kind: "deployment-not-found" };
      return { op: "getDeploymentYaml", deploymentId, digest: second };
    }
    if (second === "status") {
      return method === "POST"
        ? { op: "reportStatus", deploymentId }
        : { miss: "method-not-allowed", allow: ["GET", "POST"] };
    }
    return { miss: "method-not-allowed", allow: ["GET"] };
  }

  if (head === "bundles") {
    const segs = decodeAll(tail);
    if (segs?.length !== 1) return { miss: "not-found" };
    if (method !== "GET") return { miss: "method-not-allowed", allow: ["GET"] };
    const [digest = ""] = segs;
    if (!DIGEST_PATTERN.test(digest)) return { miss: "bad-digest", kind: "invalid-bundle" };
    return { op: "getBundle", digest };
  }

  return { miss: "not-found" };
}
