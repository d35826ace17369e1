/**
 * Which checks a run executes. Kept apart from the runner so `list` shows exactly what `run`
 * would execute, and so the rules can be tested without running anything.
 */
import type { ConformanceConfig } from "../config/types.js";
import { type Check, type ProfilePart, partOf } from "./types.js";

export type Selection = ConformanceConfig["select"];

/** Plain string prefix: `wfm.manifest` selects every check of that family, `wfm.manifest.etag` a few. */
export function matchesPrefix(id: string, prefix: string): boolean {
  return id.startsWith(prefix);
}

/** The parts (core/extended) a selection asks for; empty means both. */
export function selectedParts(sel: Selection): ProfilePart[] {
  return sel.parts.length === 0 ? ["core", "extended"] : [...new Set(sel.parts)];
}

/**
 * Apply include/exclude prefixes, the feature filter and the parts to a list of checks.
 * Order is kept (suites declare checks in a meaningful order).
 */
export function selectChecks<C extends Check<unknown>>(checks: readonly C[], sel: Selection): C[] {
  const parts = selectedParts(sel);
  return checks.filter((c) => {
    if (sel.include.length > 0 && !sel.include.some((p) => matchesPrefix(c.id, p))) return false;
    if (sel.exclude.some((p) => matchesPrefix(c.id, p))) return false;
    if (!parts.includes(partOf(c.level))) return false;
    if (sel.features.length > 0 && !(c.features ?? []).some((f) => sel.features.includes(f)))
      return false;
    return true;
  });
}

/** The features a check needs that the implementation does not claim (empty: it applies). */
export function missingFeatures(check: Check<unknown>, claimed: readonly string[]): string[] {
  return (check.features ?? []).filter((f) => !claimed.includes(f));
}
