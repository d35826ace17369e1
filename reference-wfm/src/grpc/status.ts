import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { BackoffStrategy, type ProblemDetail } from "@margo/proto";
import { encodeProblemDetail } from "@margo/proto/wire";
import { isWfmError, type WfmErrorKind } from "../core/errors.js";

/**
 * How a domain failure leaves the gRPC edge. The code follows gRPC's own HTTP mapping so a client
 * can branch without parsing anything, and the RFC 9457 body the REST edge would have sent rides
 * in trailing metadata, so a gRPC client sees the same `type`, `errors[]` and retry advice as a
 * REST client (checklist items 84-85).
 */

/** Trailing metadata key carrying the problem+json body (binary: the exact canonical bytes). */
export const PROBLEM_METADATA_KEY = "margo-problem-bin";
/** Trailing metadata key mirroring the REST Retry-After header for 429/503. */
export const RETRY_AFTER_METADATA_KEY = "retry-after";

const MARGO_TYPES = "https://docs.margo.org/specification/problem-types#";

interface KindMapping {
  code: status;
  httpStatus: number;
  /** Fragment of a registered Margo type; absent means about:blank (digest section 9). */
  margoType?: string;
  title: string;
}

/**
 * One table, so every kind has exactly one code, HTTP status and type URI. Titles of about:blank
 * problems are the HTTP reason phrase, as RFC 9457 asks.
 */
const KINDS: Record<WfmErrorKind, KindMapping> = {
  "invalid-request": {
    code: status.INVALID_ARGUMENT,
    httpStatus: 400,
    margoType: "invalid-request",
    title: "Invalid request",
  },
  "semantic-error": {
    code: status.INVALID_ARGUMENT,
    httpStatus: 422,
    margoType: "semantic-error",
    title: "Semantic error",
  },
  "not-authorized": {
    code: status.PERMISSION_DENIED,
    httpStatus: 403,
    margoType: "not-authorized",
    title: "Not authorized",
  },
  // The parent has simply not reported yet: the request may succeed later without change, which
  // is what FAILED_PRECONDITION says and NOT_FOUND does not.
  "gateway-not-found": {
    code: status.FAILED_PRECONDITION,
    httpStatus: 404,
    margoType: "gateway-not-found",
    title: "Gateway not found",
  },
  "device-not-found": {
    code: status.NOT_FOUND,
    httpStatus: 404,
    margoType: "device-not-found",
    title: "Device not found",
  },
  "deployment-not-found": {
    code: status.NOT_FOUND,
    httpStatus: 404,
    margoType: "deployment-not-found",
    title: "Deployment not found",
  },
  "invalid-bundle": {
    code: status.NOT_FOUND,
    httpStatus: 404,
    margoType: "invalid-bundle",
    title: "Invalid bundle",
  },
  "server-cannot-generate-response": {
    code: status.INVALID_ARGUMENT,
    httpStatus: 406,
    margoType: "server-cannot-generate-response",
    title: "Server cannot generate response",
  },
  "not-found": { code: status.NOT_FOUND, httpStatus: 404, title: "Not Found" },
  conflict: { code: status.ALREADY_EXISTS, httpStatus: 409, title: "Conflict" },
  "payload-too-large": {
    code: status.RESOURCE_EXHAUSTED,
    httpStatus: 413,
    title: "Content Too Large",
  },
  "unsupported-media-type": {
    code: status.INVALID_ARGUMENT,
    httpStatus: 415,
    title: "Unsupported Media Type",
  },
  "rate-limited": { code: status.RESOURCE_EXHAUSTED, httpStatus: 429, title: "Too Many Requests" },
  unavailable: { code: status.UNAVAILABLE, httpStatus: 503, title: "Service Unavailable" },
  internal: { code: status.INTERNAL, httpStatus: 500, title: "Internal Server Error" },
};

/** The gRPC status code a WfmError kind maps to. */
export function grpcCodeOf(kind: WfmErrorKind): status {
  return KINDS[kind].code;
}

/** The RFC 9457 `type` URI of a kind: the registered Margo URI, or about:blank. */
export function problemTypeOf(kind: WfmErrorKind): string {
  const t = KINDS[kind].margoType;
  return t === undefined ? "about:blank" : MARGO_TYPES + t;
}

/**
 * The problem body the REST edge would send for the same failure. 429/503 are retryable with
 * exponential backoff, every other failure is not (item 85).
 */
export function problemOf(
  kind: WfmErrorKind,
  detail: string,
  errors: readonly { field: string; message: string }[] = [],
  retryAfterSeconds?: number,
): ProblemDetail {
  const m = KINDS[kind];
  const retryable = m.httpStatus === 429 || m.httpStatus === 503;
  return {
    type: problemTypeOf(kind),
    title: m.title,
    status: m.httpStatus,
    detail,
    retryable,
    ...(retryable && retryAfterSeconds !== undefined
      ? { retryAfterSeconds: BigInt(Math.ceil(retryAfterSeconds)) }
      : {}),
    backoffStrategy: retryable
      ? BackoffStrategy.BACKOFF_STRATEGY_EXPONENTIAL
      : BackoffStrategy.BACKOFF_STRATEGY_NONE,
    errors: errors.map((e) => ({ field: e.field, message: e.message })),
  };
}

/** A grpc-js error carrying `code`, a message and the problem body in trailing metadata. */
export function serviceError(
  code: status,
  problem: ProblemDetail,
  retryAfterSeconds?: number,
): ServiceError {
  const metadata = new Metadata();
  metadata.set(PROBLEM_METADATA_KEY, Buffer.from(encodeProblemDetail(problem)));
  if (retryAfterSeconds !== undefined) {
    metadata.set(RETRY_AFTER_METADATA_KEY, String(Math.ceil(retryAfterSeconds)));
  }
  const details = problem.detail ?? problem.title;
  return Object.assign(new Error(details), { code, details, metadata });
}

/**
 * Any failure thrown by a handler, as the status sent to the caller. Only WfmError carries a
 * message we may show; anything else is a bug whose text could leak internals, so the caller
 * gets a bare INTERNAL and the detail goes to the log.
 */
export function toServiceError(err: unknown, log: (err: unknown) => void): ServiceError {
  if (isWfmError(err)) {
    const detail = err.kind === "internal" ? "internal error" : err.message;
    if (err.kind === "internal") log(err);
    return serviceError(
      KINDS[err.kind].code,
      problemOf(err.kind, detail, err.errors, err.retryAfterSeconds),
      err.kind === "rate-limited" || err.kind === "unavailable" ? err.retryAfterSeconds : undefined,
    );
  }
  log(err);
  return serviceError(status.INTERNAL, problemOf("internal", "internal error"));
}
