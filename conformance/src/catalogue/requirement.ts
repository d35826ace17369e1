import type { Level, Persona } from "../core/types.js";

/**
 * One catalogue entry: a single testable statement of Margo rc.3, bound to one persona. Checks
 * cite these ids; the reports group results by them.
 */
export interface Requirement {
  /** `<persona>-<NNN>[s]`, e.g. `wfm-049` or `wfm-049s` (the SHOULD half of item 49). */
  id: string;
  level: Level;
  persona: Persona;
  /** Source page(s) and digest section, e.g. "desired-state; digest 6.1". */
  section: string;
  /** Item number in the digest's checklist 13.2; absent for OpenAPI-only requirements (NNN >= 100). */
  checklistItem?: number;
  /** The Margo conformance toolkit's CR-ID where the digest names one. */
  crId?: string;
  /** Our own one-line wording. */
  text: string;
  /** Why no black-box check can judge it here; a MUST needs either this or a check citing it. */
  untestable?: string;
  /**
   * A requirement the harness could test but does not yet (its driver contracts cannot set the
   * scenario up), with the reason. Reported as a gap, never counted as covered or untestable.
   */
  notCovered?: string;
}

export const LEVELS: readonly Level[] = ["MUST", "SHOULD", "MAY"];
export const PERSONAS: readonly Persona[] = ["wfm", "device", "package", "mis", "registry"];

/** Higher is stronger; a check's level must equal the strongest level it cites. */
export function levelRank(level: Level): number {
  return level === "MUST" ? 2 : level === "SHOULD" ? 1 : 0;
}
