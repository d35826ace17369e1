/**
 * The harness's device side of the Management Interface: one exact HTTPS request at a time over
 * real mTLS, with the response bytes kept as they came (no decompression: digest checks judge the
 * wire). The WFM is authenticated by its SPIFFE ID through `verifySvid`, never by host name.
 */
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import { SvidVerificationError, TrustAnchors, verifySvid } from "@margo/proto/identity";
import type { CheckTools, HttpMessageEvidence } from "../../../core/types.js";
import type { Credentials, WireClient, WireRequest, WireResponse } from "../context.js";

/**
 * Where a request broke when no HTTP response came: "setup" = inside the harness before anything
 * was sent (building the TLS context from bad PEM, a bad URL), never the WFM's doing.
 */
export type WireStage = "setup" | "handshake" | "request";

/**
 * No HTTP response came (handshake refused, reset, timeout, server identity refused). Negative
 * identity checks expect some of these, so it carries the stage, the error code and whether a
 * TCP connection was made as data: only the WFM's own refusals (TLS alerts, a reset after
 * connecting) may count as a refusal, never "nobody listening" or a harness-side failure.
 */
export class WireTransportError extends Error {
  override readonly name = "WireTransportError";
  constructor(
    readonly stage: WireStage,
    readonly code: string,
    message: string,
    /** A TCP connection to the WFM was established before it broke. */
    readonly connected = false,
  ) {
    super(message);
  }
}

/** The WFM presented a certificate that is not the configured SPIFFE ID or not a valid SVID. */
export class WfmIdentityError extends Error {
  override readonly name = "WfmIdentityError";
  constructor(
    message: string,
    readonly rule?: string,
  ) {
    super(message);
  }
}

export interface WireClientOptions {
  /** Management Interface base URL (scheme, host, port; no trailing slash needed). */
  baseUrl: string;
  /** null: connect without a client certificate. */
  credentials: Credentials | null;
  actor: string;
  /** Trust anchors of the WFM's trust domain (DER). */
  anchors: readonly Buffer[];
  /**
   * The exact SPIFFE ID the WFM must present. Absent (trust endpoints): any valid SVID of the
   * trust domain, or else a certificate passing the ordinary host-name check.
   */
  wfmSpiffeId?: string;
  trustDomain: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Collect the peer chain Node built, leaf first (stops at the self-signed end). */
export function peerChainOf(cert: PeerCertificate | undefined): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let c = cert as (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined;
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(Buffer.from(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/**
 * checkServerIdentity for node:tls: the presented chain must be a valid X.509-SVID of the
 * configured trust domain carrying exactly `expected` (hostnames are not identity, digest 5.2).
 */
export function spiffeServerCheck(
  anchors: TrustAnchors,
  trustDomain: string,
  expected: string | undefined,
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    if (expected === undefined && !(cert.subjectaltname ?? "").includes("URI:spiffe://"))
      return checkServerIdentity(host, cert);
    try {
      const v = verifySvid(peerChainOf(cert), anchors, { trustDomain });
      if (expected !== undefined && v.spiffeId !== expected)
        return new WfmIdentityError(`server presented ${v.spiffeId}, expected ${expected}`);
      return undefined;
    } catch (e) {
      if (e instanceof SvidVerificationError)
        return new WfmIdentityError(`server SVID refused (${e.rule}): ${e.message}`, e.rule);
      return e instanceof Error ? e : new Error(String(e));
    }
  };
}

/** C0 control bytes other than tab, LF, CR: such a body is shown as base64. */
function hasControlBytes(b: Buffer): boolean {
  for (const x of b) if (x < 0x20 && x !== 0x09 && x !== 0x0a && x !== 0x0d) return true;
  return false;
}

/** Evidence form of a message body: text when it is UTF-8 text, else base64; always the digest. */
export function bodyEvidence(body: Buffer | string | undefined): HttpMessageEvidence["body"] {
  if (body === undefined) return undefined;
  const b = typeof body === "string" ? Buffer.from(body) : body;
  if (b.length === 0) return undefined;
  const sha256 = createHash("sha256").update(b).digest("hex");
  const text = b.toString("utf8");
  const isText = Buffer.from(text, "utf8").equals(b) && !hasControlBytes(b);
  return isText
    ? { text, sizeBytes: b.length, sha256, truncated: false }
    : { base64: b.toString("base64"), sizeBytes: b.length, sha256, truncated: false };
}

function headerRecord(
  h: IncomingHttpHeaders | OutgoingHttpHeaders,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

function errorCode(e: unknown): string {
  const err = e as { code?: unknown; name?: unknown };
  if (typeof err?.code === "string") return err.code;
  if (e instanceof WfmIdentityError) return "WFM_IDENTITY";
  return typeof err?.name === "string" ? err.name : "UNKNOWN";
}

/**
 * A WireClient with its own keep-alive agent (one TLS session per identity, like a polling
 * device). `fresh` or per-request TLS options use a one-off connection so the negotiated
 * parameters are those of this request.
 */
export function createWireClient(opts: WireClientOptions): WireClient {
  const anchors = new TrustAnchors(opts.anchors);
  const caPem = opts.anchors.map(
    (d) =>
      `-----BEGIN CERTIFICATE-----\n${d.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`,
  );
  const tlsBase = {
    ca: caPem,
    ...(opts.credentials ? { cert: opts.credentials.chainPem, key: opts.credentials.keyPem } : {}),
    rejectUnauthorized: true,
    checkServerIdentity: spiffeServerCheck(anchors, opts.trustDomain, opts.wfmSpiffeId),
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ...tlsBase });
  const base = new URL(opts.baseUrl);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  const once = (req: WireRequest, signal: AbortSignal): Promise<WireResponse> =>
    new Promise((resolve, reject) => {
      const url = new URL(req.path, base);
      const oneOff = req.fresh === true || req.tls !== undefined;
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (
        req.body !== undefined &&
        !Object.keys(headers).some((k) => k.toLowerCase() === "content-length")
      )
        headers["content-length"] = String(Buffer.byteLength(req.body));
      const ro: RequestOptions = {
        ...tlsBase,
        method: req.method,
        hostname: url.hostname,
        port: url.port || 443,
        path: `${url.pathname}${url.search}`,
        headers,
        agent: oneOff ? false : agent,
        ...(req.tls?.minVersion ? { minVersion: req.tls.minVersion as never } : {}),
        ...(req.tls?.maxVersion ? { maxVersion: req.tls.maxVersion as never } : {}),
        ...(req.tls?.ciphers ? { ciphers: req.tls.ciphers } : {}),
      };
      let secured = false;
      let connected = false;
      let socket: TLSSocket | undefined;
      let settled = false;
      const failWith = (e: unknown) => {
        if (settled) return;
        settled = true;
        const stage: WireStage = secured ? "request" : "handshake";
        reject(
          Object.assign(
            new WireTransportError(
              stage,
              errorCode(e),
              `${req.method} ${url.pathname}: no response (${stage}${connected ? "" : ", no TCP connection"}): ${(e as Error)?.message ?? String(e)}`,
              connected,
            ),
            { reusedSocket: r.reusedSocket },
          ),
        );
      };
      const r = httpsRequest(ro, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", failWith);
        res.on("end", () => {
          if (settled) return;
          settled = true;
          const s = (res.socket as TLSSocket | null) ?? socket;
          resolve({
            status: res.statusCode ?? 0,
            headers: headerRecord(res.headers),
            body: Buffer.concat(chunks),
            httpVersion: res.httpVersion,
            tls: {
              protocol: s?.getProtocol?.() ?? null,
              cipher: s?.getCipher?.()?.standardName ?? s?.getCipher?.()?.name ?? null,
              peerChainDer: peerChainOf(s?.getPeerCertificate?.(true)),
            },
          });
        });
      });
      r.setTimeout(timeoutMs, () =>
        r.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })),
      );
      r.on("socket", (s) => {
        const tls = s as TLSSocket;
        socket = tls;
        // A reused keep-alive socket is already past its handshake; only a new one gets a
        // listener (adding one per reuse would pile up on long-lived sockets).
        if (tls.encrypted && !tls.connecting && tls.getProtocol?.()) {
          secured = true;
          connected = true;
        } else {
          tls.once("connect", () => {
            connected = true;
          });
          tls.once("secureConnect", () => {
            secured = true;
            connected = true;
          });
        }
      });
      r.on("error", failWith);
      // Our own abort wiring (not the `signal` option): removed when the request settles, so
      // many requests under one check's signal leave no listeners behind.
      const onAbort = () => r.destroy(Object.assign(new Error("aborted"), { code: "ABORT_ERR" }));
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        r.once("close", () => signal.removeEventListener("abort", onAbort));
      }
      if (req.body !== undefined) r.write(req.body);
      r.end();
    });

  return {
    actor: opts.actor,
    async request(t: CheckTools, req: WireRequest): Promise<WireResponse> {
      const at = new Date().toISOString();
      const start = performance.now();
      const url = new URL(req.path, base).toString();
      const request = {
        method: req.method,
        url,
        headers: headerRecord(req.headers ?? {}),
        ...(req.body !== undefined ? { body: bodyEvidence(req.body) } : {}),
      };
      try {
        let res: WireResponse;
        try {
          res = await once(req, t.signal);
        } catch (e) {
          // An idle keep-alive connection the server closed just as it was reused: the request
          // never reached the WFM, so send it once more on a new connection (Node's documented
          // remedy). Fresh or negative requests never take this path.
          if (!(e instanceof WireTransportError && (e as { reusedSocket?: boolean }).reusedSocket))
            throw e;
          res = await once({ ...req, fresh: true }, t.signal);
        }
        t.evidence({
          kind: "http",
          at,
          durationMs: Math.round(performance.now() - start),
          actor: opts.actor,
          request,
          response: {
            status: res.status,
            headers: res.headers,
            ...(res.body.length ? { body: bodyEvidence(res.body) } : {}),
          },
        });
        return res;
      } catch (e) {
        // Anything else was thrown by the harness itself before a byte went out (Node builds the
        // TLS context synchronously): "setup", which no check may read as the WFM refusing.
        const err =
          e instanceof WireTransportError
            ? e
            : new WireTransportError(
                "setup",
                errorCode(e),
                `${req.method} ${req.path}: harness could not send the request: ${(e as Error)?.message ?? String(e)}`,
              );
        t.evidence({
          kind: "http",
          at,
          durationMs: Math.round(performance.now() - start),
          actor: opts.actor,
          request,
          transportError: `${err.stage}: ${err.code}: ${err.message}`,
        });
        throw err;
      }
    },
    close() {
      agent.destroy();
    },
  };
}
