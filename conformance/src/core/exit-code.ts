/**
 * The CLI's exit codes, decided from the report alone so CI and the self-conformance run agree.
 * Order matters: a new core failure outranks an error (the vendor must see it), and an error
 * outranks known failures (the run could not vouch for everything else).
 */
import type { RunReport } from "./types.js";

export const EXIT = {
  /** Every selected core check passed (skips allowed). */
  conformant: 0,
  /** A core check failed that is not on the known-failing list. */
  newFailure: 1,
  /** Only known-failing core checks failed. */
  onlyKnownFailures: 2,
  /** A core check errored (harness/environment) and none failed newly. */
  error: 3,
  /** Usage or configuration error. */
  usage: 4,
} as const;

export function exitCodeOf(report: Pick<RunReport, "checks">): number {
  const core = report.checks.filter((c) => c.part === "core");
  if (core.some((c) => c.outcome === "fail" && !c.knownFailing)) return EXIT.newFailure;
  if (core.some((c) => c.outcome === "error")) return EXIT.error;
  if (core.some((c) => c.outcome === "fail")) return EXIT.onlyKnownFailures;
  return EXIT.conformant;
}
