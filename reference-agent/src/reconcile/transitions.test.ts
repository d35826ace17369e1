import { describe, expect, it } from "vitest";
import type { WireState } from "../state/store.js";
import {
  COMPONENT_TRANSITIONS,
  DEPLOYMENT_TRANSITIONS,
  IllegalTransitionError,
  nextComponentState,
  nextDeploymentState,
  type ReconcileEvent,
} from "./transitions.js";

const STATES: WireState[] = ["pending", "installing", "installed", "failed", "removing", "removed"];
const EVENTS: ReconcileEvent[] = [
  "accepted",
  "start-install",
  "component-installed",
  "component-failed",
  "all-installed",
  "drift",
  "removal-requested",
  "removed",
  "remove-failed",
  "retry",
];

describe("reconcile transitions", () => {
  it("every (state, event) pair either follows the table or throws IllegalTransitionError", () => {
    for (const [table, next] of [
      [DEPLOYMENT_TRANSITIONS, nextDeploymentState],
      [COMPONENT_TRANSITIONS, nextComponentState],
    ] as const) {
      for (const from of STATES) {
        for (const event of EVENTS) {
          const to = table[from]?.[event];
          if (to === undefined) {
            expect(() => next(from, event)).toThrow(IllegalTransitionError);
          } else {
            expect(next(from, event)).toBe(to);
            expect(STATES).toContain(to);
          }
        }
      }
    }
  });

  it("install lifecycle (item 67): pending -> installing -> installed, update and drift re-enter installing", () => {
    let s = nextDeploymentState("pending", "start-install");
    expect(s).toBe("installing");
    s = nextDeploymentState(s, "component-installed");
    expect(s).toBe("installing");
    s = nextDeploymentState(s, "all-installed");
    expect(s).toBe("installed");
    expect(nextDeploymentState(s, "drift")).toBe("installing");
    expect(nextDeploymentState(s, "accepted")).toBe("pending");
    expect(nextComponentState("installed", "drift")).toBe("installing");
  });

  it("failure and retry: failed -> installing (deployment), failed -> pending (component)", () => {
    expect(nextDeploymentState("installing", "component-failed")).toBe("failed");
    expect(nextDeploymentState("failed", "retry")).toBe("installing");
    expect(nextComponentState("failed", "retry")).toBe("pending");
  });

  it("removal (item 55): any live state -> removing -> removed | failed", () => {
    for (const from of ["pending", "installing", "installed", "failed"] as const) {
      expect(nextDeploymentState(from, "removal-requested")).toBe("removing");
    }
    expect(nextDeploymentState("removing", "removed")).toBe("removed");
    expect(nextDeploymentState("removing", "remove-failed")).toBe("failed");
  });

  it("illegal moves throw with the move named", () => {
    expect(() => nextDeploymentState("installed", "all-installed")).toThrow(
      /deployment transition: installed --all-installed-->/,
    );
    expect(() => nextDeploymentState("removed", "removed")).toThrow(IllegalTransitionError);
    expect(() => nextDeploymentState("pending", "all-installed")).toThrow(IllegalTransitionError);
    expect(() => nextComponentState("installed", "component-failed")).toThrow(
      IllegalTransitionError,
    );
    expect(() => nextComponentState("pending", "all-installed")).toThrow(IllegalTransitionError);
  });
});
