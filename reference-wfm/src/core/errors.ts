/**
 * The one error type of the WFM's domain layer. Edges turn it into RFC 9457 problem+json (REST)
 * or a gRPC status; nothing below the edges knows about HTTP. `kind` names the Margo problem type
 * (digest section 9) where one applies, so the mapping to `type` URIs lives in exactly one place.
 */
export type WfmErrorKind =
  /** 400 #invalid-request: the body is not parseable JSON (or not the expected media type). */
  | "invalid-request"
  /** 422 #semantic-error: parseable but violates the schema or a rule; `errors` names each field. */
  | "semantic-error"
  /** 403 #not-authorized: the caller's still-valid identity is not (or no longer) accepted. */
  | "not-authorized"
  /** 404 #gateway-not-found: a child deviceId whose parent gateway has not reported. */
  | "gateway-not-found"
  /** 404 #device-not-found: DELETE of a device the caller never reported. */
  | "device-not-found"
  /** 404 #deployment-not-found: no ApplicationDeployment with that id and digest for the caller. */
  | "deployment-not-found"
  /** 404 #invalid-bundle: no bundle with that digest for the caller. */
  | "invalid-bundle"
  /** 406 #server-cannot-generate-response: Accept lists no media type we can produce. */
  | "server-cannot-generate-response"
  /** 404 about:blank: a northbound lookup (application, deployment, client) found nothing. */
  | "not-found"
  /** 409 about:blank: the request conflicts with current state (e.g. client id already admitted). */
  | "conflict"
  /** 413 about:blank: body larger than the configured limit, refused before buffering. */
  | "payload-too-large"
  /** 415 about:blank: request Content-Type is not one the operation accepts. */
  | "unsupported-media-type"
  /** 429 about:blank: per-client rate limit; `retryAfterSeconds` is set. */
  | "rate-limited"
  /** 503 about:blank: temporarily unable (e.g. registry unreachable); `retryAfterSeconds` set. */
  | "unavailable"
  /** 500 about:blank: a bug or a broken store; the detail is logged, not leaked. */
  | "internal";

/** One field-level error, as in ProblemDetail.errors[] (`field` is a JSON pointer). */
export interface FieldError {
  field: string;
  message: string;
}

/** Thrown by the core and the store; caught only at the edges. */
export class WfmError extends Error {
  override readonly name = "WfmError";
  constructor(
    readonly kind: WfmErrorKind,
    message: string,
    readonly errors: readonly FieldError[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** True for a WfmError of one of the given kinds (tests and edges branch on kinds, never text). */
export function isWfmError(err: unknown, ...kinds: WfmErrorKind[]): err is WfmError {
  return err instanceof WfmError && (kinds.length === 0 || kinds.includes(err.kind));
}
