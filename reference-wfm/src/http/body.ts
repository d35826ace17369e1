import type { IncomingMessage } from "node:http";

/** The request body is larger than the limit; the edge answers 413 and closes the connection. */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/** The client went away or sent a broken body; nothing to answer. */
export class BodyAbortedError extends Error {
  override readonly name = "BodyAbortedError";
}

/** The client stopped sending mid-body; the edge answers 408 and closes the connection. */
export class BodyIdleError extends Error {
  override readonly name = "BodyIdleError";
  constructor(readonly idleMs: number) {
    super(`no request body bytes for ${idleMs} ms`);
  }
}

/** The client sends its body too slowly on average; the edge answers 408 and closes the connection. */
export class BodyTooSlowError extends Error {
  override readonly name = "BodyTooSlowError";
  constructor(
    readonly minBytesPerSecond: number,
    readonly graceMs: number,
  ) {
    super(
      `request body arrived slower than ${minBytesPerSecond} bytes/s after a ${graceMs} ms grace`,
    );
  }
}

/** How a body must keep coming; every rule is off at 0 or when omitted. */
export interface BodyPace {
  /** Longest silence between two chunks. */
  idleMs?: number;
  /** Time the body may take whatever its rate. */
  graceMs?: number;
  /** After the grace, at least this many bytes per second since the grace ended, on average. */
  minBytesPerSecond?: number;
}

/**
 * Whether Content-Length alone already proves the body too large, so it is refused before a
 * single byte is buffered (issue 3, "oversized bodies rejected before they are buffered").
 */
export function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  const cl = req.headers["content-length"];
  if (cl === undefined) return false;
  const n = Number(cl);
  return Number.isFinite(n) && n > limit;
}

/**
 * Read the whole body, counting as it streams (chunked bodies have no Content-Length). A body
 * that goes quiet for `idleMs` fails with BodyIdleError; one that, after `graceMs`, falls behind
 * `minBytesPerSecond` on average fails with BodyTooSlowError. Together they bound how long a
 * trickling client holds a socket and a buffer, yet a slow but steady link (a device on a
 * satellite uplink) finishes however long its body takes: a fixed whole-request timeout cut it.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  pace: BodyPace = {},
): Promise<Buffer> {
  const idleMs = pace.idleMs ?? 0;
  const graceMs = pace.graceMs ?? 0;
  const rate = pace.minBytesPerSecond ?? 0;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    let slow: NodeJS.Timeout | undefined;
    const started = performance.now();
    const armIdle = () => {
      if (idleMs <= 0) return;
      if (idle) idle.refresh();
      else idle = setTimeout(() => finish(new BodyIdleError(idleMs)), idleMs);
    };
    // One timer, re-armed only when it fires, for the moment the bytes so far stop being enough:
    // no timer work per chunk.
    const checkRate = () => {
      const due = started + graceMs + (size * 1000) / rate;
      const left = due - performance.now();
      if (left <= 0) finish(new BodyTooSlowError(rate, graceMs));
      else slow = setTimeout(checkRate, Math.ceil(left));
    };
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (idle) clearTimeout(idle);
      if (slow) clearTimeout(slow);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      armIdle();
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (e: Error) => finish(new BodyAbortedError(e.message));
    const onAborted = () => finish(new BodyAbortedError("client aborted the request"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
    armIdle();
    if (rate > 0) slow = setTimeout(checkRate, graceMs);
  });
}

/**
 * Whether the request says its body is JSON. rc.3 accepts only application/json for PUT/POST;
 * parameters (charset) are allowed, the type is case-insensitive (RFC 9110 8.3.1).
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type = ""] = header.split(";");
  return type.trim().toLowerCase() === "application/json";
}

/**
 * Why a request body cannot be read as UTF-8 JSON as sent, or undefined when it can: a content
 * coding other than identity (we would parse compressed bytes as JSON) or a charset other than
 * UTF-8 (RFC 8259 8.1: JSON exchanged between systems is UTF-8). The edge answers 400: rc.3
 * lists no 415 for PUT/POST.
 */
export function unsupportedBodyEncoding(
  contentType: string | undefined,
  contentEncoding: string | string[] | undefined,
): string | undefined {
  const codings = [contentEncoding ?? []]
    .flat()
    .flatMap((h) => h.split(","))
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "");
  const foreign = codings.find((c) => c !== "identity");
  if (foreign !== undefined) return `Content-Encoding ${foreign} is not supported; send identity`;
  for (const param of (contentType ?? "").split(";").slice(1)) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const value = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (value !== "utf-8") return `charset ${value} is not supported; JSON bodies are utf-8`;
  }
  return undefined;
}
