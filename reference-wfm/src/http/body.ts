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

/** Read the whole body, counting as it streams (chunked bodies have no Content-Length). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
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
