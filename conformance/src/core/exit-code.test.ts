import { describe, expect, it } from "vitest";
import { EXIT, exitCodeOf, verdictOf } from "./exit-code.js";
import { KnownFailingError, parseKnownFailing } from "./known-failing.js";
import type { CheckResult, Outcome, ProfilePart } from "./types.js";

function r(
  outcome: Outcome,
  part: ProfilePart = "core",
  knownFailing = false,
  suite: CheckResult["suite"] = "wfm",
  message?: string,
): CheckResult {
  return {
    ...(message !== undefined ? { message } : {}),
    id: `wfm.x.${Math.random()}`,
    title: "",
    suite,
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
    ["no checks at all", [], EXIT.error],
    ["only extended checks selected, judged", [r("pass", "extended")], EXIT.conformant],
    ["only extended checks selected, all skipped", [r("skip", "extended")], EXIT.error],
    ["every core check skipped", [r("skip"), r("skip"), r("pass", "extended")], EXIT.error],
    [
      "a selected suite unavailable, another suite passing",
      [
        r("pass"),
        r("skip", "core", false, "package", "suite package unavailable: no sources"),
        r("skip", "extended", false, "package", "suite package unavailable: no sources"),
      ],
      EXIT.error,
    ],
    [
      "a suite without a config section",
      [r("pass"), r("skip", "core", false, "device", "suite device not configured: no section")],
      EXIT.error,
    ],
    [
      "skips for other reasons do not make a suite unavailable",
      [r("pass"), r("skip", "core", false, "device", "needs feature helm")],
      EXIT.conformant,
    ],
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
  it("verdictOf says why nothing was judged", () => {
    const v = verdictOf({ checks: [r("skip", "core", false, "wfm", "suite wfm unavailable: x")] });
    expect(v).toMatchObject({ conformant: false, code: EXIT.error });
    expect(v.reason).toMatch(/suite wfm did not run/);
    expect(verdictOf({ checks: [r("pass")] })).toEqual({ conformant: true, code: 0 });
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
