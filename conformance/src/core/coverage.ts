/**
 * Requirement coverage: which checks of this run gave evidence for each catalogue requirement,
 * and how that went. The catalogue itself is H1's (`src/catalogue/`); the runner only needs the
 * fields the report shows, so it accepts anything shaped like this.
 */
import type { CheckResult, Level, Outcome, Persona, RunReport } from "./types.js";

/** The catalogue fields the report carries (a catalogue Requirement satisfies this). */
export interface CatalogueEntry {
  id: string;
  level: Level;
  persona: Persona;
  section: string;
  checklistItem?: number;
  crId?: string;
  text: string;
  /** Why the requirement cannot be tested black-box (shown instead of "not-run"). */
  untestable?: string;
  /** A gap: testable, but the harness does not test it yet (with the reason). */
  notCovered?: string;
}

/**
 * A requirement's outcome over its checks: any fail makes it fail, else any error, else pass when
 * at least one check passed (another check of it may not apply here), else skip.
 */
export function requirementOutcome(outcomes: readonly Outcome[]): Outcome | "not-run" {
  if (outcomes.length === 0) return "not-run";
  for (const o of ["fail", "error", "pass", "skip"] as const) if (outcomes.includes(o)) return o;
  return "not-run";
}

export function buildCoverage(
  catalogue: readonly CatalogueEntry[],
  checks: readonly CheckResult[],
): RunReport["requirements"] {
  const byReq = new Map<string, CheckResult[]>();
  for (const c of checks) {
    for (const r of c.requirements) {
      const list = byReq.get(r) ?? [];
      list.push(c);
      byReq.set(r, list);
    }
  }
  return catalogue.map((req) => {
    const cs = byReq.get(req.id) ?? [];
    const entry: RunReport["requirements"][number] = {
      id: req.id,
      level: req.level,
      persona: req.persona,
      section: req.section,
      text: req.text,
      checks: cs.map((c) => c.id),
      outcome: requirementOutcome(cs.map((c) => c.outcome)),
    };
    if (req.checklistItem !== undefined) entry.checklistItem = req.checklistItem;
    if (req.crId !== undefined) entry.crId = req.crId;
    if (req.untestable !== undefined) entry.untestable = req.untestable;
    if (req.notCovered !== undefined) entry.notCovered = req.notCovered;
    return entry;
  });
}
