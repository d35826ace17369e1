import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { Agent, request } from "node:https";
import type { DetailedPeerCertificate, PeerCertificate } from "node:tls";
import { gunzipSync } from "node:zlib";
import type { ProblemDetail } from "@margo/proto";
import { decodeProblemDetail, MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import { type AgentIdentity, IdentityCheckError } from "../identity/types.js";
import type { AgentLog } from "../log.js";
import { mutant } from "../mutants.js";
import { type ManifestResponse, type WfmApi, WfmRequestError } from "./api.js";

export interface RestClientOptions {
  /** Whole-request timeout (connect, TLS, body); default 30 s. */
  requestTimeoutMs?: number;
  log?: AgentLog;
  /** Pooled connections to the WFM; default 2 (one poll, one status report in flight). */
  maxSockets?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * A response larger than this is not a Margo document; refuse it rather than buffer it. Applies to
 * the bytes received and, for a gzip body, to the decoded bytes.
 */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

// rc.3 BackoffStrategy enum values in the generated model (numeric, ts-proto).
const BACKOFF_NONE = 1;
const BACKOFF_FIXED = 2;
const BACKOFF_EXPONENTIAL = 3;

/**
 * OpenSSL's own chain errors, named by the SVID rule they stand for. Node verifies the chain
 * against `ca` before our check runs; when it already refuses, the reason must still come out as
 * an identity failure with a rule, not as a network error the caller would retry.
 */
const TLS_RULES: Record<string, string> = {
  CERT_HAS_EXPIRED: "svid.expired",
  CERT_NOT_YET_VALID: "svid.not-yet-valid",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "svid.untrusted-chain",
  UNABLE_TO_GET_ISSUER_CERT: "svid.untrusted-chain",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "svid.untrusted-chain",
  SELF_SIGNED_CERT_IN_CHAIN: "svid.untrusted-chain",
  DEPTH_ZERO_SELF_SIGNED_CERT: "svid.untrusted-chain",
  CERT_UNTRUSTED: "svid.untrusted-chain",
  CERT_SIGNATURE_FAILURE: "svid.bad-signature",
  INVALID_CA: "svid.intermediate-not-ca",
  CERT_CHAIN_TOO_LONG: "svid.untrusted-chain",
  PATH_LENGTH_EXCEEDED: "svid.untrusted-chain",
  INVALID_PURPOSE: "svid.invalid-purpose",
};

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * The chain the server sent, leaf first, as DER. Node links the certificates through
 * `issuerCertificate`; the root points at itself, which ends the walk.
 */
export function peerChainDer(cert: PeerCertificate | DetailedPeerCertificate): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = cert as DetailedPeerCertificate;
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(c.raw);
    if (c.issuerCertificate === c) break;
    c = c.issuerCertificate;
  }
  return chain;
}

/** Retry-After as absolute epoch ms: delta-seconds or an HTTP-date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return now + Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * The Management Interface over mTLS (node:https). The server is judged by
 * `identity.verifyServer` alone: hostname checks are replaced, because the URL is routing only
 * and the SPIFFE ID is the WFM's name (digest 5.3, item 8). One keep-alive Agent holds the
 * connections; it is rebuilt whenever anchors or the own SVID change, so nothing keeps talking
 * over a session established under the old trust.
 */
export class RestWfmClient implements WfmApi {
  private agent: Agent;
  private deferUntil = 0;
  private readonly base: URL;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    baseUrl: string,
    private readonly identity: AgentIdentity,
    private readonly opts: RestClientOptions = {},
  ) {
    this.base = new URL(baseUrl);
    if (this.base.protocol !== "https:") throw new TypeError(`${baseUrl} is not an https URL`);
    this.agent = this.buildAgent();
    this.unsubscribe = identity.onChange(() => this.resetConnections());
  }

  async putCapabilities(deviceId: string, body: Uint8Array): Promise<{ status: 200 | 201 }> {
    const res = await this.send("PUT", `/api/v1/capabilities/${devicePath(deviceId)}`, {
      body,
      headers: { "content-type": "application/json" },
    });
    if (res.status === 200 || res.status === 201) return { status: res.status };
    throw unexpected("PUT capabilities", res);
  }

  async deleteCapabilities(deviceId: string): Promise<void> {
    const res = await this.send("DELETE", `/api/v1/capabilities/${devicePath(deviceId)}`, {});
    if (res.status === 204 || res.status === 200) return;
    throw unexpected("DELETE capabilities", res);
  }

  async getManifest(ifNoneMatch?: string): Promise<ManifestResponse> {
    const headers: OutgoingHttpHeaders = { accept: MANIFEST_MEDIA_TYPE };
    if (ifNoneMatch !== undefined) headers["if-none-match"] = ifNoneMatch;
    const res = await this.send("GET", "/api/v1/deployments", { headers });
    if (res.status === 304) return { status: 304 };
    if (res.status !== 200) throw unexpected("GET deployments", res);
    const contentType = res.headers["content-type"];
    if (mediaType(contentType) !== MANIFEST_MEDIA_TYPE)
      throw new WfmRequestError(
        "protocol",
        `GET deployments: Content-Type ${contentType ?? "(none)"}, expected ${MANIFEST_MEDIA_TYPE}`,
        { status: 200, retryable: false, backoff: "none" },
      );
    const etag = res.headers.etag;
    return { status: 200, body: res.body, etag, contentType };
  }

  async getArtifact(url: string): Promise<Uint8Array> {
    const target = new URL(url, this.base);
    // The client SVID goes only to the WFM it was issued for: an absolute URL elsewhere in a
    // manifest is not followed (the agent would authenticate to a stranger).
    if (target.origin !== this.base.origin)
      throw new WfmRequestError(
        "protocol",
        `artifact URL ${url} leaves the WFM origin ${this.base.origin}`,
        { retryable: false, backoff: "none" },
      );
    const res = await this.send("GET", `${target.pathname}${target.search}`, {
      headers: { "accept-encoding": "gzip" },
      absolutePath: true,
    });
    if (res.status !== 200) throw unexpected(`GET ${target.pathname}`, res);
    return res.body;
  }

  async postStatus(deploymentId: string, body: Uint8Array): Promise<{ status: 200 | 201 }> {
    const res = await this.send(
      "POST",
      `/api/v1/deployments/${encodeURIComponent(deploymentId)}/status`,
      { body, headers: { "content-type": "application/json" } },
    );
    if (res.status === 200 || res.status === 201) return { status: res.status };
    throw unexpected("POST status", res);
  }

  notBefore(): number {
    return this.deferUntil;
  }

  resetConnections(): void {
    if (this.closed) return;
    const old = this.agent;
    this.agent = this.buildAgent();
    old.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.agent.destroy();
  }

  private buildAgent(): Agent {
    const tls = this.identity.tls();
    return new Agent({
      keepAlive: true,
      maxSockets: this.opts.maxSockets ?? 2,
      cert: tls.certChainPem,
      key: tls.keyPem,
      ca: tls.anchorsPem,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      maxVersion: mutant("tls12-only") ? "TLSv1.2" : "TLSv1.3",
      // The identity check replaces the hostname check entirely (digest 5.3).
      checkServerIdentity: (_host, cert) => {
        try {
          this.identity.verifyServer(peerChainDer(cert));
          return undefined;
        } catch (e) {
          return e as Error;
        }
      },
    });
  }

  private path(p: string, absolutePath: boolean): string {
    if (absolutePath) return p;
    return `${this.base.pathname.replace(/\/+$/, "")}${p}`;
  }

  /** One request; throws WfmRequestError for everything but a response below 400. */
  private send(
    method: string,
    path: string,
    req: { body?: Uint8Array; headers?: OutgoingHttpHeaders; absolutePath?: boolean },
  ): Promise<RawResponse> {
    if (this.closed)
      return Promise.reject(
        new WfmRequestError("network", "client closed", { retryable: false, backoff: "none" }),
      );
    const now = Date.now();
    if (now < this.deferUntil)
      return Promise.reject(
        new WfmRequestError(
          "deferred",
          `${method} ${path}: Retry-After runs until ${new Date(this.deferUntil).toISOString()}; nothing sent (item 86)`,
          { retryable: true, backoff: "none", retryAt: this.deferUntil },
        ),
      );
    const what = `${method} ${path}`;
    const timeoutMs = this.opts.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<RawResponse>((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { ...req.headers };
      if (req.body) headers["content-length"] = req.body.byteLength;
      const r = request({
        agent: this.agent,
        protocol: "https:",
        hostname: this.base.hostname.replace(/^\[|\]$/g, ""),
        port: this.base.port || 443,
        method,
        path: this.path(path, req.absolutePath ?? false),
        headers,
      });
      const timer = setTimeout(
        () =>
          r.destroy(
            Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" }),
          ),
        timeoutMs,
      );
      const fail = (e: unknown) => {
        clearTimeout(timer);
        reject(this.classifyFailure(what, e));
      };
      r.on("error", fail);
      r.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) r.destroy(new Error(`response over ${MAX_BODY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          let body = Buffer.concat(chunks);
          const coding = res.headers["content-encoding"]?.trim().toLowerCase();
          if (coding === "gzip" || coding === "x-gzip") {
            try {
              // The cap counted compressed bytes; a small bomb must not inflate past it either.
              body = gunzipSync(body, { maxOutputLength: MAX_BODY_BYTES });
            } catch (e) {
              const tooLarge = (e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
              const why = tooLarge
                ? `gzip body decodes to more than ${MAX_BODY_BYTES} bytes`
                : `gzip body does not decode: ${e}`;
              reject(
                new WfmRequestError("protocol", `${what}: ${why}`, {
                  status: res.statusCode,
                  retryable: false,
                  backoff: "none",
                }),
              );
              return;
            }
          } else if (coding && coding !== "identity") {
            reject(
              new WfmRequestError("protocol", `${what}: unsupported Content-Encoding ${coding}`, {
                status: res.statusCode,
                retryable: false,
                backoff: "none",
              }),
            );
            return;
          }
          const out: RawResponse = { status: res.statusCode ?? 0, headers: res.headers, body };
          if (out.status >= 400) {
            reject(this.httpError(what, out));
            return;
          }
          resolve(out);
        });
      });
      r.end(
        req.body
          ? Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength)
          : undefined,
      );
    });
  }

  /** An error answer: the problem's fields decide, the status only fills what it leaves out. */
  private httpError(what: string, res: RawResponse): WfmRequestError {
    let problem: ProblemDetail | undefined;
    if (mediaType(res.headers["content-type"]) === "application/problem+json") {
      problem = decodeProblemDetail(res.body).value;
    }
    const defaultRetryable = res.status === 429 || res.status === 500 || res.status === 503;
    const retryable = problem?.retryable ?? defaultRetryable;
    let backoff: "exponential" | "fixed" | "none" = defaultRetryable ? "exponential" : "none";
    const strategy = problem?.backoffStrategy as number | undefined;
    if (strategy === BACKOFF_NONE) backoff = "none";
    else if (strategy === BACKOFF_FIXED) backoff = "fixed";
    else if (strategy === BACKOFF_EXPONENTIAL) backoff = "exponential";
    const retryAt = mutant("retry-after-ignored")
      ? undefined
      : parseRetryAfter(headerText(res.headers["retry-after"]));
    // Never retry before Retry-After (item 86): every call waits, not just the one that got it.
    if (retryAt !== undefined && retryAt > this.deferUntil) this.deferUntil = retryAt;
    const why = problem
      ? `${problem.type}${problem.detail ? `: ${problem.detail}` : ""}`
      : res.body.subarray(0, 200).toString("utf8");
    this.opts.log?.({
      level: "debug",
      msg: "WFM error answer",
      request: what,
      status: res.status,
      type: problem?.type,
      retryAt,
    });
    return new WfmRequestError("http", `${what}: ${res.status} ${why}`, {
      status: res.status,
      ...(problem ? { problem } : {}),
      retryable,
      backoff,
      ...(retryAt !== undefined ? { retryAt } : {}),
    });
  }

  private classifyFailure(what: string, e: unknown): WfmRequestError {
    if (e instanceof WfmRequestError) return e;
    if (e instanceof IdentityCheckError) {
      this.opts.log?.({
        level: "warn",
        msg: "WFM identity refused",
        kind: "wfm-identity-mismatch",
        rule: e.rule,
        error: e.message,
      });
      return new WfmRequestError("identity", `${what}: ${e.message}`, {
        retryable: false,
        backoff: "none",
        rule: e.rule,
      });
    }
    const err = e as NodeJS.ErrnoException;
    const rule = err.code ? TLS_RULES[err.code] : undefined;
    if (rule) {
      this.opts.log?.({
        level: "warn",
        msg: "WFM certificate refused",
        kind: "wfm-identity-mismatch",
        rule,
        error: err.message,
      });
      return new WfmRequestError("identity", `${what}: ${err.code}: ${err.message}`, {
        retryable: false,
        backoff: "none",
        rule,
      });
    }
    return new WfmRequestError("network", `${what}: ${err.code ?? ""} ${err.message}`.trim(), {
      retryable: true,
      backoff: "exponential",
    });
  }
}

/** The media type of a Content-Type, lower-cased, without parameters. */
function mediaType(v: string | undefined): string | undefined {
  return v?.split(";")[0]?.trim().toLowerCase();
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A hierarchical device id (`gw/child`) keeps its slashes; each segment is escaped. */
function devicePath(deviceId: string): string {
  return deviceId.split("/").map(encodeURIComponent).join("/");
}

/** A success status the operation does not define (e.g. 202): we cannot tell what happened. */
function unexpected(what: string, res: RawResponse): WfmRequestError {
  return new WfmRequestError("protocol", `${what}: unexpected status ${res.status}`, {
    status: res.status,
    retryable: false,
    backoff: "none",
  });
}
