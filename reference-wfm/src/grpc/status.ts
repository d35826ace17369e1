import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { isWfmError, WfmError, type WfmErrorKind } from "../core/errors.js";
import { type ProblemResponse, problemFromError } from "../http/problem.js";

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

/**
 * The gRPC code of each kind, following gRPC's HTTP mapping; the problem body itself (type URI,
 * title, retry advice) comes from the REST edge's table so both bindings send identical bytes.
 */
const CODES: Record<WfmErrorKind, status> = {
  "invalid-request": status.INVALID_ARGUMENT,
  "semantic-error": status.INVALID_ARGUMENT,
  "not-authorized": status.PERMISSION_DENIED,
  // The parent has simply not reported yet: the same request may succeed later, which is what
  // FAILED_PRECONDITION says and NOT_FOUND does not.
  "gateway-not-found": status.FAILED_PRECONDITION,
  "device-not-found": status.NOT_FOUND,
  "deployment-not-found": status.NOT_FOUND,
  "invalid-bundle": status.NOT_FOUND,
  "server-cannot-generate-response": status.INVALID_ARGUMENT,
  "not-found": status.NOT_FOUND,
  conflict: status.ALREADY_EXISTS,
  "payload-too-large": status.RESOURCE_EXHAUSTED,
  "unsupported-media-type": status.INVALID_ARGUMENT,
  "rate-limited": status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/** The gRPC status code a WfmError kind maps to. */
export function grpcCodeOf(kind: WfmErrorKind): status {
  return CODES[kind];
}

/** The problem the REST edge would send for `kind` with this detail (no retry hint). */
export function problemOf(kind: WfmErrorKind, detail: string): ProblemResponse {
  return problemFromError(new WfmError(kind, detail));
}

/** A grpc-js error carrying `code`, a message and the problem body in trailing metadata. */
export function serviceError(code: status, problem: ProblemResponse): ServiceError {
  const metadata = new Metadata();
  metadata.set(PROBLEM_METADATA_KEY, problem.body);
  const retryAfter = problem.headers["retry-after"];
  if (retryAfter !== undefined) metadata.set(RETRY_AFTER_METADATA_KEY, retryAfter);
  const details = problem.problem.detail ?? problem.problem.title;
  return Object.assign(new Error(details), { code, details, metadata });
}

/**
 * Any failure thrown by a handler, as the status sent to the caller. Only a WfmError's message
 * may be shown; anything else is a bug whose text could leak internals, so the caller gets a bare
 * INTERNAL and the detail goes to the log.
 */
export function toServiceError(err: unknown, log: (err: unknown) => void): ServiceError {
  if (!isWfmError(err) || err.kind === "internal") log(err);
  return serviceError(isWfmError(err) ? CODES[err.kind] : status.INTERNAL, problemFromError(err));
}
