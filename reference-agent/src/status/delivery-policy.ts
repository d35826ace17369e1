import { WfmRequestError } from "../wfm/api.js";

/** Margo's reserved problem-type namespace (digest §9); a type outside it is not a Margo condition. */
export const MARGO_PROBLEM_NS = "https://docs.margo.org/specification/problem-types#";

/** rc.3 `backoffStrategy: none` as the generated model numbers it. */
const STRATEGY_NONE = 1;

/**
 * What the outbox does after one failed delivery of its head entry. Only a verdict, no timing:
 * the sender owns the clocks, so the rule table stays a pure function that tests can read row by
 * row.
 */
export type DeliveryVerdict =
  /** Nothing was sent (a Retry-After still runs): wait it out, not an attempt. */
  | { action: "defer" }
  /**
   * Try the same entry again. `exponential`: growing full-jitter spacing, never below
   * `advisoryMs`; `fixed`: a constant `advisoryMs` (or the slow base without one); `slow`: the
   * cause lies outside the report (policy, identity, a proxy), so slowly, and for `bounded` ones
   * only a limited number of times.
   */
  | { action: "retry"; spacing: "exponential" | "fixed"; advisoryMs?: number }
  | { action: "retry"; spacing: "slow"; bounded: boolean }
  /** The WFM will never take these bytes: keep them with the reason and move on. */
  | { action: "dead-letter"; reason: string };

/**
 * Decide by problem `type`, `retryable` and `backoffStrategy`, the status only where the type is
 * not a Margo one (item 86, digest §4.4). The order of the rules is the point:
 *
 * 1. No answer (network) or a local failure: retry fast; a WFM that is down is the case the outbox
 *    exists for, it must never cost a report.
 * 2. The server failed our identity checks: retry slowly without end. No WFM we trust has read the
 *    report, so refusing it for good would lose it to whoever is in the middle.
 * 3. An answer we cannot interpret (`protocol`, e.g. a 202): dead-letter; retrying the same bytes
 *    would get the same answer forever and block every later report.
 * 4. `retryable: true`: as its `backoffStrategy` says; an explicit `none` means "do not retry"
 *    (OpenAPI), which wins over the contradicting flag.
 * 5. `retryable: false` with `#not-authorized` (or a bare 403): local policy the operator may lift,
 *    so a bounded number of slow retries, then dead-letter.
 * 6. `retryable: false` 5xx without any problem body (501 aside): likely a proxy that speaks no
 *    Margo; treated like 5: bounded and slow.
 * 7. Every other `retryable: false` answer (400, 404 of any type, 409, 422, 501, ...): dead-letter
 *    at once, the reason keeps type and detail.
 */
export function judgeDeliveryFailure(err: unknown): DeliveryVerdict {
  if (!(err instanceof WfmRequestError)) return { action: "retry", spacing: "exponential" };
  const { details } = err;
  switch (err.kind) {
    case "deferred":
      return { action: "defer" };
    case "network":
      return { action: "retry", spacing: "exponential" };
    case "identity":
      return { action: "retry", spacing: "slow", bounded: false };
    case "protocol":
      return { action: "dead-letter", reason: refusalReason(err) };
  }
  const problem = details.problem;
  const advisory = advisoryMs(err);
  const withAdvisory = advisory !== undefined ? { advisoryMs: advisory } : {};
  if (details.retryable) {
    if ((problem?.backoffStrategy as number | undefined) === STRATEGY_NONE)
      return {
        action: "dead-letter",
        reason: `${refusalReason(err)} (retryable, but backoffStrategy none: do not retry)`,
      };
    if (details.backoff === "fixed") return { action: "retry", spacing: "fixed", ...withAdvisory };
    return { action: "retry", spacing: "exponential", ...withAdvisory };
  }
  const margoType = problem?.type.startsWith(MARGO_PROBLEM_NS)
    ? problem.type.slice(MARGO_PROBLEM_NS.length)
    : undefined;
  if (margoType === "not-authorized") return { action: "retry", spacing: "slow", bounded: true };
  // Not a Margo type (about:blank, a vendor's, none at all): the status is all we can go by.
  if (margoType === undefined) {
    const status = details.status ?? 0;
    if (status === 403) return { action: "retry", spacing: "slow", bounded: true };
    if (!problem && status >= 500 && status !== 501)
      return { action: "retry", spacing: "slow", bounded: true };
  }
  return { action: "dead-letter", reason: refusalReason(err) };
}

/** `retryAfterSeconds` of the problem in ms: advisory, the Retry-After header still wins. */
function advisoryMs(err: WfmRequestError): number | undefined {
  const s = err.details.problem?.retryAfterSeconds;
  if (s === undefined || s === null) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined;
}

/** Status, type and detail: what an operator needs to see why a report was given up. */
export function refusalReason(err: WfmRequestError): string {
  const { status, problem } = err.details;
  const parts = [err.kind, status !== undefined ? String(status) : "", problem?.type ?? ""];
  parts.push(problem?.detail ?? err.message);
  return parts.filter((p) => p !== "").join(" ");
}
