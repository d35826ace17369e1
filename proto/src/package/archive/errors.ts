import type { Problem } from "../../problem.js";

/**
 * ArchiveRejectedError is thrown where a caller needs a result or nothing (extract, pack): it
 * carries every problem found, so the caller can still report all of them at once.
 */
export class ArchiveRejectedError extends Error {
  readonly problems: Problem[];
  constructor(what: string, problems: Problem[]) {
    const errors = problems.filter((p) => p.severity === "error");
    const shown = errors
      .slice(0, 5)
      .map((p) => `${p.rule} at ${p.pointer}: ${p.message}`)
      .join("; ");
    super(`${what}: ${errors.length} problem(s): ${shown}${errors.length > 5 ? "; ..." : ""}`);
    this.name = "ArchiveRejectedError";
    this.problems = problems;
  }
}
