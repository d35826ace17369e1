import { describe, expect, it } from "vitest";
import { createCheckTools, diffValues } from "./tools.js";
import { CheckFailed, CheckSkipped, type CheckTools } from "./types.js";

describe("CheckTools", () => {
  it("fail/expect throw CheckFailed, skip throws CheckSkipped", () => {
    const { tools } = createCheckTools({ signal: new AbortController().signal });
    expect(() => tools.fail("boom")).toThrow(CheckFailed);
    expect(() => tools.expect(false, "nope", { a: 1 })).toThrow(CheckFailed);
    expect(() => tools.expect(1, "fine")).not.toThrow();
    expect(() => tools.skip("n/a")).toThrow(CheckSkipped);
  });

  it("expectEqual compares in JSON terms and names each difference by pointer", () => {
    const tools: CheckTools = createCheckTools({ signal: new AbortController().signal }).tools;
    expect(() => tools.expectEqual({ b: 1, a: [1n] }, { a: ["1"], b: 1 }, "same")).not.toThrow();
    try {
      tools.expectEqual(
        { status: 404, body: { type: "x" } },
        { status: 200, body: { type: "x", title: "t" } },
        "answer",
      );
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CheckFailed);
      expect((err as CheckFailed).message).toBe(
        'answer: /status: expected 200, got 404; /body/title: expected "t", got (absent)',
      );
      expect((err as CheckFailed).details).toMatchObject({
        what: "answer",
        expected: { status: 200 },
        actual: { status: 404 },
      });
    }
  });

  it("caps evidence per check and counts what it dropped; sealed tools record nothing", () => {
    const h = createCheckTools({ signal: new AbortController().signal, evidenceCap: 3 });
    for (let i = 0; i < 5; i++) h.tools.evidence({ kind: "note", at: "t", text: `n${i}` });
    expect(h.evidence()).toHaveLength(3);
    expect(h.droppedEvidence()).toBe(2);
    h.seal();
    h.tools.note("late");
    expect(h.notes()).toEqual([]);
  });

  it("diffValues walks arrays and objects", () => {
    expect(diffValues([1, { a: 2 }], [1, { a: 3 }, 4])).toEqual([
      { path: "/1/a", expected: 3, actual: 2 },
      { path: "/2", expected: 4, actual: undefined },
    ]);
  });
});
