import { mutant } from "../mutants.js";
import { WfmRequestError } from "../wfm/api.js";
import { backoffDelay } from "../wfm/backoff.js";

/** Margo's reserved problem-type namespace (digest 9); other types are not Margo conditions. */
const MARGO_PROBLEM_NS = "https://docs.margo.org/specification/problem-types#";

/** rc.3 `backoffStrategy: none` as the generated model numbers it. */
const STRATEGY_NONE = 1;

/**
 * The Margo problem type fragment (`device-not-found`, `semantic-error`, ...) of a failed
 * request, or undefined when the answer carried none or a vendor's: the OpenAPI says clients
 * decide by `type`, never by status or title.
 */
export function margoProblemType(err: unknown): string | undefined {
  if (!(err instanceof WfmRequestError)) return undefined;
  const type = err.details.problem?.type;
  return type?.startsWith(MARGO_PROBLEM_NS) ? type.slice(MARGO_PROBLEM_NS.length) : undefined;
}

/** A stable key for "the same error again", so a loop logs a persisting failure once. */
export function errorKey(err: unknown): string {
  if (!(err instanceof WfmRequestError)) return err instanceof Error ? err.message : String(err);
  const { status, problem } = err.details;
  return [err.kind, status ?? "", problem?.type ?? "", problem?.detail ?? err.message].join(" ");
}

/**
 * What to do after one failed request. `retry`: try again after `delayMs` (never before a
 * Retry-After); `regular`: the WFM said this request will not succeed as it is, so no error
 * backoff: the loop waits for its next regular turn (a new poll, the periodic re-check).
 */
export type RetryDecision =
  | { action: "retry"; delayMs: number; spacing: "exponential" | "fixed" | "deferred" }
  | { action: "regular"; reason: string };

export interface RetryPolicyOptions {
  /** First ceiling of the exponential spacing (full jitter). */
  baseMs: number;
  capMs: number;
  /** Constant of a `fixed` strategy that names no `retryAfterSeconds`. */
  fixedMs?: number;
  random?: () => number;
  now?: () => number;
}

/**
 * Item 86 for the polling loops (manifest sync, capabilities): decided by `retryable`,
 * `backoffStrategy`, `retryAfterSeconds` and Retry-After, not by status code.
 *
 * - No answer (network) or a local failure: jittered exponential; the WFM being down is the
 *   normal case a device must ride out.
 * - Deferred (a Retry-After still runs, nothing was sent): wait exactly until it ends; no attempt.
 * - `retryable: true`: `fixed` is a constant spacing (`retryAfterSeconds`), `exponential` starts at
 *   `retryAfterSeconds` and never undercuts it, an explicit `none` means do not retry.
 * - `retryable: false`, an identity failure (the same anchors give the same verdict) or an answer
 *   we cannot use: no error backoff at all.
 * Retry-After is always a floor.
 */
export class RetryPolicy {
  private attempt = 0;
  private readonly now: () => number;

  constructor(private readonly opts: RetryPolicyOptions) {
    this.now = opts.now ?? Date.now;
  }

  decide(err: unknown): RetryDecision {
    if (!(err instanceof WfmRequestError)) return this.exponential(undefined, undefined);
    const { details } = err;
    switch (err.kind) {
      case "deferred":
        return {
          action: "retry",
          delayMs: Math.max(1, (details.retryAt ?? this.now()) - this.now()),
          spacing: "deferred",
        };
      case "network":
        return this.exponential(undefined, details.retryAt);
      case "identity":
        return { action: "regular", reason: "the WFM failed the identity check" };
      case "protocol":
        return { action: "regular", reason: "an answer the agent cannot use" };
    }
    if (mutant("retry-after-ignored")) return { action: "regular", reason: "mutant" };
    if (!details.retryable) return { action: "regular", reason: "not retryable" };
    if ((details.problem?.backoffStrategy as number | undefined) === STRATEGY_NONE) {
      return { action: "regular", reason: "retryable, but backoffStrategy none" };
    }
    const advisory = advisoryMs(err);
    if (details.backoff === "fixed") {
      this.attempt++;
      const delay = advisory ?? this.opts.fixedMs ?? this.opts.baseMs;
      return { action: "retry", delayMs: this.floor(delay, details.retryAt), spacing: "fixed" };
    }
    return this.exponential(advisory, details.retryAt);
  }

  /** A success: the next failure starts the spacing over. */
  reset(): void {
    this.attempt = 0;
  }

  /** Failures since the last reset that were retried on the error spacing. */
  get failures(): number {
    return this.attempt;
  }

  private exponential(advisory: number | undefined, retryAt: number | undefined): RetryDecision {
    // "exponential backoff starting at retryAfterSeconds" (OpenAPI): the first ceiling and a floor.
    const baseMs = advisory ?? this.opts.baseMs;
    const capMs = Math.max(this.opts.capMs, baseMs);
    const random = this.opts.random;
    const jitter = backoffDelay(this.attempt++, { baseMs, capMs, ...(random ? { random } : {}) });
    return {
      action: "retry",
      delayMs: this.floor(Math.max(advisory ?? 0, jitter), retryAt),
      spacing: "exponential",
    };
  }

  private floor(delay: number, retryAt: number | undefined): number {
    return retryAt === undefined ? delay : Math.max(delay, retryAt - this.now());
  }
}

/** `retryAfterSeconds` in ms: advisory only, Retry-After wins where both are present. */
function advisoryMs(err: WfmRequestError): number | undefined {
  const s = err.details.problem?.retryAfterSeconds;
  if (s === undefined || s === null) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined;
}
