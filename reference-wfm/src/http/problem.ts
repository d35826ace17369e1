import { STATUS_CODES } from "node:http";
import { BackoffStrategy, type ProblemDetail } from "@margo/proto";
import { encodeProblemDetail, PROBLEM_MEDIA_TYPE } from "@margo/proto/wire";
import type { FieldError, WfmErrorKind } from "../core/errors.js";
import { WfmError } from "../core/errors.js";
import { mutant } from "../mutants.js";

/** The namespace the spec reserves for Margo problem types (digest section 9). */
export const MARGO_PROBLEM_BASE = "https://docs.margo.org/specification/problem-types#";

/** How one WfmError kind appears on the wire: status, `type` URI and title. */
export interface ProblemShape {
  status: number;
  /** Full `type` URI, or `about:blank` when no Margo type applies. */
  type: string;
  title: string;
}

function margo(status: number, name: string, title: string): ProblemShape {
  return { status, type: `${MARGO_PROBLEM_BASE}${name}`, title };
}

/** about:blank problems carry the HTTP reason phrase as title (RFC 9457 4.2, checklist item 84). */
function blank(status: number): ProblemShape {
  return { status, type: "about:blank", title: STATUS_CODES[status] ?? "Error" };
}

/**
 * The one kind -> problem table. REST and gRPC both read it, so a Margo condition carries the
 * same registered `type` URI whichever binding reported it (item 84).
 */
export const PROBLEM_SHAPES: Readonly<Record<WfmErrorKind, ProblemShape>> = {
  "invalid-request": margo(400, "invalid-request", "Invalid request"),
  "semantic-error": margo(422, "semantic-error", "Semantic error"),
  "not-authorized": margo(403, "not-authorized", "Not authorized"),
  "gateway-not-found": margo(404, "gateway-not-found", "Gateway not found"),
  "device-not-found": margo(404, "device-not-found", "Device not found"),
  "deployment-not-found": margo(404, "deployment-not-found", "Deployment not found"),
  "invalid-bundle": margo(404, "invalid-bundle", "Invalid bundle"),
  "server-cannot-generate-response": margo(
    406,
    "server-cannot-generate-response",
    "Server cannot generate response",
  ),
  "not-found": blank(404),
  conflict: blank(409),
  "payload-too-large": blank(413),
  "unsupported-media-type": blank(415),
  "rate-limited": blank(429),
  unavailable: blank(503),
  internal: blank(500),
};

/** Statuses whose problems are retryable with exponential backoff and a Retry-After (item 85). */
const RETRYABLE_STATUSES = new Set([429, 500, 503]);

/** Retry-After we send on a 500 that names none: the spec recommends one (digest 4.4). */
const DEFAULT_INTERNAL_RETRY_SECONDS = 5;

/** Everything an edge needs to answer with a problem. */
export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  problem: ProblemDetail;
}

export interface ProblemInput {
  status: number;
  /** Defaults to about:blank. */
  type?: string;
  /** Defaults to the reason phrase. */
  title?: string;
  detail?: string;
  /** The request path (RFC 9457 `instance`). */
  instance?: string;
  errors?: readonly FieldError[];
  retryAfterSeconds?: number;
  /** Extra response headers (Allow on 405, ...). */
  headers?: Record<string, string>;
}

/**
 * Build a problem+json response. `retryable`/`backoffStrategy` always follow the status (item
 * 85): 429/503/500 retryable with exponential backoff and a Retry-After header, all else not.
 */
export function problemResponse(input: ProblemInput): ProblemResponse {
  const retryable = RETRYABLE_STATUSES.has(input.status);
  let retryAfter: number | undefined;
  if (retryable) {
    const wanted = input.retryAfterSeconds ?? DEFAULT_INTERNAL_RETRY_SECONDS;
    retryAfter = Math.max(1, Math.ceil(wanted));
  }
  const problem: ProblemDetail = {
    type: input.type ?? "about:blank",
    title: input.title ?? STATUS_CODES[input.status] ?? "Error",
    status: input.status,
    ...(input.detail !== undefined ? { detail: input.detail } : {}),
    ...(input.instance !== undefined ? { instance: input.instance } : {}),
    retryable,
    ...(retryAfter !== undefined ? { retryAfterSeconds: BigInt(retryAfter) } : {}),
    backoffStrategy: retryable
      ? BackoffStrategy.BACKOFF_STRATEGY_EXPONENTIAL
      : BackoffStrategy.BACKOFF_STRATEGY_NONE,
    errors: (input.errors ?? []).map((e) => ({ field: e.field, message: e.message })),
  };
  const headers: Record<string, string> = {
    "content-type": mutant("problem-as-json") ? "application/json" : PROBLEM_MEDIA_TYPE,
    // A 404 is heuristically cacheable; a digest that is missing now may be served later, and an
    // error must never be replayed from a cache in place of a fresh answer.
    "cache-control": "no-store",
    ...(input.headers ?? {}),
  };
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  let body: Buffer;
  try {
    body = Buffer.from(encodeProblemDetail(problem));
  } catch {
    // A request-target that is no valid URI reference (odd bytes the parser let through) cannot
    // be the `instance`; the problem is still answered, just without it.
    delete problem.instance;
    body = Buffer.from(encodeProblemDetail(problem));
  }
  return { status: input.status, headers, body, problem };
}

/**
 * Map anything thrown below the edge to a problem. WfmErrors keep their kind's shape; anything
 * else is a bug and becomes a 500 whose detail leaks nothing (the caller logs the cause).
 */
export function problemFromError(err: unknown, instance?: string): ProblemResponse {
  if (err instanceof WfmError) {
    const shape = PROBLEM_SHAPES[err.kind];
    return problemResponse({
      status: shape.status,
      type: shape.type,
      title: shape.title,
      detail: err.kind === "internal" ? "internal error" : err.message,
      ...(instance !== undefined ? { instance } : {}),
      errors: err.errors,
      ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
    });
  }
  return problemResponse({
    status: 500,
    detail: "internal error",
    ...(instance !== undefined ? { instance } : {}),
  });
}
