import type { WireState } from "../state/store.js";

/**
 * The reconcile state machine, written down as data so that every move the reconciler makes is
 * checked against it and a test can list what is allowed. rc.3 does not specify transitions
 * (digest 7: implied lifecycle pending -> installing -> installed | failed, update installed ->
 * installing, removal -> removing -> removed | failed); this table is that lifecycle plus the
 * agent's own repair paths (drift, retry).
 */

/** What happened to a deployment or component. */
export type ReconcileEvent =
  | "accepted"
  | "start-install"
  | "component-installed"
  | "component-failed"
  | "all-installed"
  | "drift"
  | "removal-requested"
  | "removed"
  | "remove-failed"
  | "retry";

type Table = Readonly<
  Partial<Record<WireState, Readonly<Partial<Record<ReconcileEvent, WireState>>>>>
>;

/**
 * Deployment-level moves. `accepted` covers a new revision arriving in any non-removing state
 * (an update of an installed or failed deployment starts over from pending); `removal-requested`
 * is allowed from everywhere except removed, since a deployment may leave the manifest mid-install.
 */
export const DEPLOYMENT_TRANSITIONS: Table = {
  pending: {
    accepted: "pending",
    "start-install": "installing",
    "removal-requested": "removing",
    "component-failed": "failed",
  },
  installing: {
    accepted: "pending",
    // A pass resumed after a crash re-enters installing without a new report.
    "start-install": "installing",
    "component-installed": "installing",
    "component-failed": "failed",
    "all-installed": "installed",
    "removal-requested": "removing",
  },
  installed: {
    accepted: "pending",
    "start-install": "installing",
    drift: "installing",
    "removal-requested": "removing",
  },
  failed: {
    accepted: "pending",
    retry: "installing",
    "start-install": "installing",
    "component-failed": "failed",
    "removal-requested": "removing",
  },
  removing: {
    "removal-requested": "removing",
    removed: "removed",
    "remove-failed": "failed",
    // The deployment came back into the manifest while being removed.
    accepted: "pending",
  },
  removed: {
    accepted: "pending",
  },
};

/** Component-level moves; a component has no "all-installed" and no deployment-wide removal. */
export const COMPONENT_TRANSITIONS: Table = {
  pending: {
    accepted: "pending",
    "start-install": "installing",
    // Nothing could be started: the deployment targets another device or no runtime is here.
    "component-failed": "failed",
    "removal-requested": "removing",
  },
  installing: {
    accepted: "pending",
    "start-install": "installing",
    "component-installed": "installed",
    "component-failed": "failed",
    "removal-requested": "removing",
  },
  installed: {
    accepted: "pending",
    "start-install": "installing",
    drift: "installing",
    "removal-requested": "removing",
  },
  failed: {
    accepted: "pending",
    // A retried deployment lists its failed components as pending again until their turn.
    retry: "pending",
    "start-install": "installing",
    "component-failed": "failed",
    "removal-requested": "removing",
  },
  removing: {
    "removal-requested": "removing",
    removed: "removed",
    "remove-failed": "failed",
    accepted: "pending",
  },
  removed: {
    accepted: "pending",
  },
};

/** A move the table does not allow: a reconciler bug, never a WFM or runtime condition. */
export class IllegalTransitionError extends Error {
  constructor(
    readonly level: "deployment" | "component",
    readonly from: WireState,
    readonly event: ReconcileEvent,
  ) {
    super(`illegal ${level} transition: ${from} --${event}-->`);
    this.name = "IllegalTransitionError";
  }
}

function move(
  level: "deployment" | "component",
  table: Table,
  from: WireState,
  event: ReconcileEvent,
) {
  const to = table[from]?.[event];
  if (to === undefined) throw new IllegalTransitionError(level, from, event);
  return to;
}

/** The deployment state after `event`; throws IllegalTransitionError for a move not in the table. */
export function nextDeploymentState(from: WireState, event: ReconcileEvent): WireState {
  return move("deployment", DEPLOYMENT_TRANSITIONS, from, event);
}

/** The component state after `event`; throws IllegalTransitionError for a move not in the table. */
export function nextComponentState(from: WireState, event: ReconcileEvent): WireState {
  return move("component", COMPONENT_TRANSITIONS, from, event);
}
