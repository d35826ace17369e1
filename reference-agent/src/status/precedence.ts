import type { WireState } from "../state/store.js";

/**
 * Severity order of deployment states, most severe first: the overall `status.state` is the most
 * severe component state (item 69).
 *
 * Spec conflict: rc.3 prints `failed > removing > installing > pending > removing > installed`,
 * listing `removing` twice and omitting `removed` (digest 7, open question 6). We read the second
 * `removing` as the intended `removed`: a deployment is only `removed` once every component is,
 * and is still `installed` only if nothing is being removed.
 */
export const STATE_PRECEDENCE: readonly WireState[] = [
  "failed",
  "removing",
  "installing",
  "pending",
  "removed",
  "installed",
];

/** Rank of a state: lower is more severe. */
export function severity(state: WireState): number {
  return STATE_PRECEDENCE.indexOf(state);
}

/** The more severe of two states. */
export function moreSevere(a: WireState, b: WireState): WireState {
  return severity(a) <= severity(b) ? a : b;
}

/**
 * Overall state from component states. A deployment with no components has nothing installed
 * yet, so it is `pending` (the WFM has it, the device has not applied it).
 */
export function overallState(components: ReadonlyArray<{ state: WireState }>): WireState {
  let overall: WireState | undefined;
  for (const c of components)
    overall = overall === undefined ? c.state : moreSevere(overall, c.state);
  return overall ?? "pending";
}
