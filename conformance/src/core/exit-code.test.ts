import { describe, expect, it } from "vitest";
import { EXIT, exitCodeOf } from "./exit-code.js";
import { KnownFailingError, parseKnownFailing } from "./known-failing.js";
import type { CheckResult, Outcome, ProfilePart } from "./types.js";

function r(outcome: Outcome, part: ProfilePart = "core", knownFailing = false): CheckResult {
  return {
    id: `wfm.x.${Math.random()}`,
    title: "",
    suite: "wfm",
    family: "wfm.x",
    level: part === "core" ? "MUST" : "SHOULD",
    part,
    requirements: [],
    outcome,
    knownFailing,
    startedAt: "",
    durationMs: 0,
    notes: [],
    evidence: [],
  };
}

describe("exitCodeOf", () => {
  it.each([
    ["all pass (skips allowed)", [r("pass"), r("skip")], EXIT.conformant],
    ["no checks at all", [], EXIT.conformant],
    [
      "extended fail and error do not count",
      [r("pass"), r("fail", "extended"), r("error", "extended")],
      EXIT.conformant,
    ],
    ["a new core failure", [r("pass"), r("fail")], EXIT.newFailure],
    [
      "a new failure outranks errors and known failures",
      [r("error"), r("fail", "core", true), r("fail")],
      EXIT.newFailure,
    ],
    ["only known failures", [r("pass"), r("fail", "core", true)], EXIT.onlyKnownFailures],
    ["an error with no new failure", [r("error"), r("fail", "core", true)], EXIT.error],
    ["an error alone", [r("pass"), r("error")], EXIT.error],
  ])("%s", (_name, checks, code) => {
    expect(exitCodeOf({ checks })).toBe(code);
  });
  it("usage is 4", () => expect(EXIT.usage).toBe(4));
});

describe("parseKnownFailing", () => {
  it("reads a YAML list, a JSON list and {checks: [...]}", () => {
    expect(parseKnownFailing("- wfm.a.b\n- device.c.d\n")).toEqual(["wfm.a.b", "device.c.d"]);
    expect(parseKnownFailing('["wfm.a.b"]')).toEqual(["wfm.a.b"]);
    expect(parseKnownFailing("checks:\n  - wfm.a.b\n")).toEqual(["wfm.a.b"]);
    expect(parseKnownFailing("")).toEqual([]);
  });
  it("refuses other shapes with a named error", () => {
    expect(() => parseKnownFailing("foo: bar")).toThrow(KnownFailingError);
    expect(() => parseKnownFailing("- 1\n- wfm.a")).toThrow(/entries must be check ids/);
    expect(() => parseKnownFailing("[unclosed")).toThrow(KnownFailingError);
  });
});
