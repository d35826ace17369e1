/**
 * A small recording HTTP proxy in front of the harness's OCI registry (item 80: the WFM pulls
 * packages only through the OCI distribution v1.1 endpoints). The WFM is told to pull from the
 * proxy's address; every request it makes is forwarded unchanged (method, path, headers, body)
 * and its method and path recorded, so a check can judge the paths afterwards. Listens on
 * 127.0.0.1 only: it never offers anything beyond loopback.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";

/** One request the proxy saw, in arrival order. */
export interface RecordedRequest {
  method: string;
  /** Path and query exactly as the client sent them. */
  path: string;
  /** Upstream status, or undefined when forwarding failed. */
  status?: number;
}

export interface RegistryProxy {
  /** host:port to give the WFM (e.g. `127.0.0.1:40123`). */
  readonly address: string;
  /** Every request so far (a copy). */
  requests(): RecordedRequest[];
  close(): Promise<void>;
}

export interface RegistryProxyOptions {
  /** host:port of the real registry. */
  upstream: string;
  /** Forward over HTTPS (a registry off loopback); default plain HTTP. */
  upstreamTls?: boolean;
}

/**
 * Connection-scoped headers (RFC 9110 7.6.1) are not forwarded: they describe the hop to the
 * proxy, not the request. Host is rewritten to the upstream so a virtual-hosted registry answers.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

function forwardHeaders(h: IncomingMessage["headers"]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** Start the proxy on 127.0.0.1:0; close() it when the check is done. */
export async function startRegistryProxy(opts: RegistryProxyOptions): Promise<RegistryProxy> {
  const log: RecordedRequest[] = [];
  const send = opts.upstreamTls ? httpsRequest : httpRequest;
  const [host, port] = splitHostPort(opts.upstream);
  const server: Server = createServer((req, res) => {
    const entry: RecordedRequest = { method: req.method ?? "", path: req.url ?? "" };
    log.push(entry);
    const up = send(
      {
        host,
        port,
        method: req.method,
        path: req.url,
        headers: { ...forwardHeaders(req.headers), host: opts.upstream },
      },
      (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, forwardHeaders(upRes.headers));
        upRes.pipe(res);
      },
    );
    up.on("error", (e) => {
      // The registry side broke: the WFM sees a 502, the log keeps the request without a status.
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`registry proxy: ${e.message}`);
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port: own } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    requests: () => log.map((r) => ({ ...r })),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function splitHostPort(hostPort: string): [string, number] {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
  if (!m?.[1]) throw new Error(`registry address ${hostPort} is not host[:port]`);
  return [m[1].replace(/^\[|\]$/g, ""), m[2] ? Number(m[2]) : 80];
}

// ---------------------------------------------------------------------------------------------
// Judging the log

/** Repository name grammar of the distribution spec (path components joined by /). */
const NAME = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*";
const TAG = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";
const DIGEST = "[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+";

/** Pull endpoints of the OCI distribution spec v1.1 (end-1, end-2, end-3, end-8a, end-12a). */
const PULL_ENDPOINTS: ReadonlyArray<{ name: string; re: RegExp }> = [
  { name: "base", re: /^\/v2\/$/ },
  { name: "blobs", re: new RegExp(`^/v2/(${NAME})/blobs/(${DIGEST})$`) },
  { name: "manifests", re: new RegExp(`^/v2/(${NAME})/manifests/(${TAG}|${DIGEST})$`) },
  { name: "tags/list", re: new RegExp(`^/v2/(${NAME})/tags/list$`) },
  { name: "referrers", re: new RegExp(`^/v2/(${NAME})/referrers/(${DIGEST})$`) },
];

/** What a recorded request is, as the distribution spec sees it. */
export interface ClassifiedRequest extends RecordedRequest {
  /** The endpoint it matched, undefined when it is not a distribution v1.1 pull endpoint. */
  endpoint?: "base" | "blobs" | "manifests" | "tags/list" | "referrers";
  repository?: string;
  /** Tag or digest (manifests, blobs, referrers). */
  reference?: string;
}

/**
 * classifyRequest names the distribution v1.1 pull endpoint a request used, or none. Only GET and
 * HEAD count: a WFM pulling packages has no business pushing, deleting or mounting. The query is
 * ignored (tags/list pagination `n`/`last`, referrers `artifactType`).
 */
export function classifyRequest(r: RecordedRequest): ClassifiedRequest {
  if (r.method !== "GET" && r.method !== "HEAD") return { ...r };
  const path = r.path.split("?")[0] ?? "";
  for (const e of PULL_ENDPOINTS) {
    const m = e.re.exec(path);
    if (!m) continue;
    return {
      ...r,
      endpoint: e.name as ClassifiedRequest["endpoint"],
      ...(m[1] ? { repository: m[1] } : {}),
      ...(m[2] ? { reference: m[2] } : {}),
    };
  }
  return { ...r };
}

/** What the WFM must at least have pulled through the proxy. */
export interface ExpectedPulls {
  /** Package repository, e.g. `margo-conformance/conformance-pull/package`. */
  repository: string;
  /** The tag and the digest of the package manifest (either counts). */
  manifestRefs: readonly string[];
  /** Digest of the description (margo.yaml) layer. */
  descriptionDigest: string;
}

export interface PullJudgement {
  /** Requests that are not distribution v1.1 pull endpoints (each one a violation of item 80). */
  offending: RecordedRequest[];
  /** What the WFM should have pulled but did not (empty when it did). */
  missing: string[];
}

/** judgePulls sorts a request log into violations and missing pulls; it decides nothing. */
export function judgePulls(log: readonly RecordedRequest[], want: ExpectedPulls): PullJudgement {
  const classified = log.map(classifyRequest);
  const offending = classified
    .filter((c) => c.endpoint === undefined)
    .map(({ method, path, status }) => ({ method, path, ...(status ? { status } : {}) }));
  const got = (endpoint: string, refs: readonly string[]) =>
    classified.some(
      (c) =>
        c.method === "GET" &&
        c.endpoint === endpoint &&
        c.repository === want.repository &&
        c.reference !== undefined &&
        refs.includes(c.reference),
    );
  const missing: string[] = [];
  if (!got("manifests", want.manifestRefs))
    missing.push(`GET /v2/${want.repository}/manifests/<${want.manifestRefs.join(" or ")}>`);
  if (!got("blobs", [want.descriptionDigest]))
    missing.push(`GET /v2/${want.repository}/blobs/${want.descriptionDigest}`);
  return { offending, missing };
}
