/**
 * The CLI's exit codes, decided from the report alone so CI and the self-conformance run agree.
 * Order matters: a new core failure outranks an error (the vendor must see it), and an error
 * outranks known failures (the run could not vouch for everything else).
 */
import type { CheckResult, RunReport } from "./types.js";

export const EXIT = {
  /** Every selected core check passed (skips allowed). */
  conformant: 0,
  /** A core check failed that is not on the known-failing list. */
  newFailure: 1,
  /** Only known-failing core checks failed. */
  onlyKnownFailures: 2,
  /**
   * A core check errored (harness/environment) and none failed newly; also a run that judged
   * nothing (zero core pass+fail) or in which a selected suite was unavailable: "conformant"
   * must never stand for "nothing was looked at".
   */
  error: 3,
  /** Usage or configuration error. */
  usage: 4,
} as const;

/**
 * How the runner marks the checks of a suite it could not open or that had no configuration
 * section: every selected check is a skip whose message starts like this (core/runner.ts).
 */
const SUITE_UNAVAILABLE = /^suite (\S+) (unavailable|not configured):/;

/**
 * Why the run cannot vouch for anything, or undefined when it judged something. A run whose
 * every core check was skipped (no config section, a suite that could not open, an --include
 * prefix matching nothing) would otherwise read "conformant" with exit 0.
 */
export function unjudgedReason(report: Pick<RunReport, "checks">): string | undefined {
  const bySuite = new Map<string, CheckResult[]>();
  for (const c of report.checks) bySuite.set(c.suite, [...(bySuite.get(c.suite) ?? []), c]);
  const unavailable = [...bySuite].filter(
    ([, rs]) =>
      rs.length > 0 &&
      rs.every((r) => r.outcome === "skip" && SUITE_UNAVAILABLE.test(r.message ?? "")),
  );
  if (unavailable.length > 0) {
    const names = unavailable.map(([n]) => n).join(", ");
    const first = unavailable[0]?.[1][0]?.message ?? "";
    return `selected suite${unavailable.length > 1 ? "s" : ""} ${names} did not run (${first})`;
  }
  // A run selecting only the extended part (--part extended) has no core check to judge; it
  // must still have judged something of what it selected.
  const hasCore = report.checks.some((c) => c.part === "core");
  const judged = report.checks.filter(
    (c) => (!hasCore || c.part === "core") && (c.outcome === "pass" || c.outcome === "fail"),
  ).length;
  if (judged === 0)
    return hasCore
      ? "no core check was judged (every selected core check was skipped)"
      : "no check was judged (none was selected, or every selected check was skipped)";
  return undefined;
}

/** The verdict shown next to the counts: conformant only when the exit code is 0. */
export function verdictOf(report: Pick<RunReport, "checks">): {
  conformant: boolean;
  code: number;
  reason?: string;
} {
  const code = exitCodeOf(report);
  const reason = code === EXIT.error ? unjudgedReason(report) : undefined;
  return { conformant: code === EXIT.conformant, code, ...(reason ? { reason } : {}) };
}

export function exitCodeOf(report: Pick<RunReport, "checks">): number {
  const core = report.checks.filter((c) => c.part === "core");
  if (core.some((c) => c.outcome === "fail" && !c.knownFailing)) return EXIT.newFailure;
  if (core.some((c) => c.outcome === "error")) return EXIT.error;
  if (unjudgedReason(report) !== undefined) return EXIT.error;
  if (core.some((c) => c.outcome === "fail")) return EXIT.onlyKnownFailures;
  return EXIT.conformant;
}
