import { describe, expect, it } from "vitest";
import type { WireState } from "../state/store.js";
import { moreSevere, overallState, STATE_PRECEDENCE, severity } from "./precedence.js";

const ALL: WireState[] = ["pending", "installing", "installed", "failed", "removing", "removed"];

describe("status precedence (item 69)", () => {
  it("orders all six rc.3 states, each once, removed between pending and installed (open question 6)", () => {
    expect([...STATE_PRECEDENCE].sort()).toEqual([...ALL].sort());
    expect(STATE_PRECEDENCE).toEqual([
      "failed",
      "removing",
      "installing",
      "pending",
      "removed",
      "installed",
    ]);
  });

  // Every ordered pair, written out independently of the constant: a in row, b in column.
  const expected: Record<WireState, Record<WireState, WireState>> = {
    failed: {
      failed: "failed",
      removing: "failed",
      installing: "failed",
      pending: "failed",
      removed: "failed",
      installed: "failed",
    },
    removing: {
      failed: "failed",
      removing: "removing",
      installing: "removing",
      pending: "removing",
      removed: "removing",
      installed: "removing",
    },
    installing: {
      failed: "failed",
      removing: "removing",
      installing: "installing",
      pending: "installing",
      removed: "installing",
      installed: "installing",
    },
    pending: {
      failed: "failed",
      removing: "removing",
      installing: "installing",
      pending: "pending",
      removed: "pending",
      installed: "pending",
    },
    removed: {
      failed: "failed",
      removing: "removing",
      installing: "installing",
      pending: "pending",
      removed: "removed",
      installed: "removed",
    },
    installed: {
      failed: "failed",
      removing: "removing",
      installing: "installing",
      pending: "pending",
      removed: "removed",
      installed: "installed",
    },
  };
  for (const a of ALL) {
    for (const b of ALL) {
      it(`item 69: ${a} with ${b} is ${expected[a][b]}`, () => {
        expect(moreSevere(a, b)).toBe(expected[a][b]);
        expect(overallState([{ state: a }, { state: b }])).toBe(expected[a][b]);
        expect(overallState([{ state: b }, { state: a }])).toBe(expected[a][b]);
      });
    }
  }

  it("a single component decides alone; no components is pending; severity ranks strictly", () => {
    for (const s of ALL) expect(overallState([{ state: s }])).toBe(s);
    expect(overallState([])).toBe("pending");
    expect(
      overallState([{ state: "installed" }, { state: "installed" }, { state: "removed" }]),
    ).toBe("removed");
    expect(new Set(ALL.map(severity)).size).toBe(6);
    expect(severity("failed")).toBeLessThan(severity("installed"));
  });
});
