import { describe, expect, it } from "vitest";
import type { ConformanceConfig } from "../config/types.js";
import type { CatalogueEntry } from "./coverage.js";
import { fakeCheck, fakeSuite } from "./fake-suite.js";
import { type ProgressEvent, runConformance } from "./runner.js";
import { SuiteUnavailable } from "./types.js";

function config(over: Partial<ConformanceConfig> = {}): ConformanceConfig {
  return {
    suites: ["wfm"],
    output: { dir: "/tmp/unused", formats: ["json"] },
    select: { include: [], exclude: [], features: [], parts: ["core", "extended"] },
    knownFailing: [],
    checkTimeoutMs: 2000,
    parallelSuites: true,
    registry: { address: "127.0.0.1:5000", plainHttp: true },
    wfm: {} as ConformanceConfig["wfm"],
    device: {} as ConformanceConfig["device"],
    package: { sources: [] },
    ...over,
  };
}

describe("runConformance outcome mapping", () => {
  it("maps pass, fail (CheckFailed), skip, a thrown TypeError (error) and a timeout (error)", async () => {
    const suite = fakeSuite("wfm", [
      fakeCheck("wfm", "p", "pass"),
      fakeCheck("wfm", "f", "fail"),
      fakeCheck("wfm", "s", "skip"),
      fakeCheck("wfm", "te", "type-error"),
      fakeCheck("wfm", "h", "hang", { timeoutMs: 50 }),
      fakeCheck("wfm", "after", "pass"),
    ]);
    const report = await runConformance(config(), { suites: { wfm: suite }, abortGraceMs: 200 });
    const by = Object.fromEntries(report.checks.map((c) => [c.id.split(".")[2], c]));
    expect(by.p?.outcome).toBe("pass");
    expect(by.f?.outcome).toBe("fail");
    expect(by.f?.message).toContain("expected 200, got 500");
    expect(by.f?.details).toEqual({ status: 500 });
    expect(by.s?.outcome).toBe("skip");
    expect(by.s?.message).toBe("not applicable here");
    expect(by.te?.outcome).toBe("error");
    expect(by.te?.message).toMatch(/TypeError/);
    expect(by.h?.outcome).toBe("error");
    expect(by.h?.message).toMatch(/timed out after 50 ms/);
    // the run goes on after an error
    expect(by.after?.outcome).toBe("pass");
    expect(report.summary).toMatchObject({
      total: 6,
      pass: 2,
      fail: 1,
      error: 2,
      skip: 1,
      conformant: false,
    });
    // open once, reset before every check, close once, in order
    expect(suite.log.filter((l) => l.startsWith("open"))).toHaveLength(1);
    expect(suite.log.filter((l) => l.startsWith("reset"))).toHaveLength(6);
    expect(suite.log.at(-1)).toBe("close");
    expect(by.p?.notes).toEqual(["running wfm.fake.p"]);
  });

  it("skips every check of an unavailable suite, errors every check when open throws anything else", async () => {
    const a = fakeSuite("wfm", [fakeCheck("wfm", "a", "pass"), fakeCheck("wfm", "b", "pass")], {
      openError: new SuiteUnavailable("no kind on PATH"),
    });
    const b = fakeSuite("device", [fakeCheck("device", "a", "pass")], {
      openError: new Error("dockerd did not answer"),
    });
    const report = await runConformance(config({ suites: ["wfm", "device"] }), {
      suites: { wfm: a, device: b },
    });
    const wfm = report.checks.filter((c) => c.suite === "wfm");
    expect(wfm.map((c) => c.outcome)).toEqual(["skip", "skip"]);
    expect(wfm[0]?.message).toContain("no kind on PATH");
    const dev = report.checks.filter((c) => c.suite === "device");
    expect(dev.map((c) => c.outcome)).toEqual(["error"]);
    expect(dev[0]?.message).toContain("dockerd did not answer");
    expect(report.implementations).toEqual({});
  });

  it("a suite whose set-up misses its deadline errors its checks, and is closed when it opens late", async () => {
    const s = fakeSuite("wfm", [fakeCheck("wfm", "a", "pass")], { openDelayMs: 150 });
    const report = await runConformance(config(), { suites: { wfm: s }, openTimeoutMs: 30 });
    expect(report.checks[0]?.outcome).toBe("error");
    expect(report.checks[0]?.message).toMatch(/set-up did not finish within 30 ms/);
    await new Promise((r) => setTimeout(r, 250));
    expect(s.log.at(-1)).toBe("close");
  });

  it("a failing beforeEach is an error, never a fail; close errors are reported as progress", async () => {
    const events: ProgressEvent[] = [];
    const s = fakeSuite("wfm", [fakeCheck("wfm", "a", "fail")], {
      beforeEachError: new Error("driver reset refused"),
      closeError: new Error("teardown broke"),
    });
    const report = await runConformance(config(), {
      suites: { wfm: s },
      onProgress: (e) => events.push(e),
    });
    expect(report.checks[0]?.outcome).toBe("error");
    expect(report.checks[0]?.message).toContain("driver reset refused");
    expect(events.find((e) => e.type === "suite-closed")).toMatchObject({
      closeError: "teardown broke",
    });
  });

  it("skips checks needing features the implementation does not claim, naming the feature", async () => {
    const s = fakeSuite(
      "wfm",
      [
        fakeCheck("wfm", "needs-helm", "pass", { features: ["helm"] }),
        fakeCheck("wfm", "needs-x", "pass", { features: ["x"] }),
      ],
      { features: ["x"] },
    );
    const report = await runConformance(config(), { suites: { wfm: s } });
    expect(report.checks[0]).toMatchObject({ outcome: "skip" });
    expect(report.checks[0]?.message).toMatch(/needs feature helm/);
    expect(report.checks[1]?.outcome).toBe("pass");
  });

  it("marks known-failing checks, counts them, and is still not conformant", async () => {
    const s = fakeSuite("wfm", [
      fakeCheck("wfm", "f", "fail"),
      fakeCheck("wfm", "g", "fail", { level: "SHOULD" }),
    ]);
    const report = await runConformance(config({ knownFailing: ["wfm.fake.f"] }), {
      suites: { wfm: s },
    });
    expect(report.checks[0]).toMatchObject({ knownFailing: true, outcome: "fail", part: "core" });
    expect(report.checks[1]).toMatchObject({ knownFailing: false, part: "extended" });
    expect(report.summary.knownFail).toBe(1);
    expect(report.summary.core).toEqual({ total: 1, pass: 0, fail: 1, error: 0, skip: 0 });
    expect(report.summary.conformant).toBe(false);
  });

  it("only extended failures leave the run conformant", async () => {
    const s = fakeSuite("wfm", [
      fakeCheck("wfm", "p", "pass"),
      fakeCheck("wfm", "g", "fail", { level: "SHOULD" }),
    ]);
    const report = await runConformance(config(), { suites: { wfm: s } });
    expect(report.summary.conformant).toBe(true);
    expect(report.profiles).toEqual(["wfm-core", "wfm-extended"]);
  });

  it("runs suites in parallel when asked (both open before either closes)", async () => {
    const a = fakeSuite("wfm", [fakeCheck("wfm", "h", "hang", { timeoutMs: 100 })]);
    const b = fakeSuite("device", [fakeCheck("device", "h", "hang", { timeoutMs: 100 })]);
    const order: string[] = [];
    const onProgress = (e: ProgressEvent) => {
      if (e.type === "suite-opened" || e.type === "suite-closed")
        order.push(`${e.type} ${e.suite}`);
    };
    await runConformance(config({ suites: ["wfm", "device"] }), {
      suites: { wfm: a, device: b },
      onProgress,
      abortGraceMs: 10,
    });
    expect(order.slice(0, 2).every((x) => x.startsWith("suite-opened"))).toBe(true);
    order.length = 0;
    await runConformance(config({ suites: ["wfm", "device"], parallelSuites: false }), {
      suites: { wfm: a, device: b },
      onProgress,
      abortGraceMs: 10,
    });
    expect(order).toEqual([
      "suite-opened wfm",
      "suite-closed wfm",
      "suite-opened device",
      "suite-closed device",
    ]);
  });

  it("does not open a suite with nothing selected, and skips a suite without a config section", async () => {
    const a = fakeSuite("wfm", [fakeCheck("wfm", "a", "pass")]);
    const b = fakeSuite("package", [fakeCheck("package", "a", "pass")]);
    const report = await runConformance(
      config({
        suites: ["wfm", "package"],
        package: undefined,
        select: { include: ["package."], exclude: [], features: [], parts: [] },
      }),
      { suites: { wfm: a, package: b } },
    );
    expect(a.log).toEqual([]);
    expect(report.checks.map((c) => [c.id, c.outcome])).toEqual([["package.fake.a", "skip"]]);
    expect(report.checks[0]?.message).toContain("no 'package' section");
  });

  it("builds requirement coverage with the worst outcome per requirement", async () => {
    const catalogue: CatalogueEntry[] = [
      {
        id: "wfm-001",
        level: "MUST",
        persona: "wfm",
        section: "s",
        text: "one",
        checklistItem: 1,
        crId: "MI-001",
      },
      { id: "wfm-002", level: "MUST", persona: "wfm", section: "s", text: "two" },
      { id: "wfm-003", level: "SHOULD", persona: "wfm", section: "s", text: "three" },
    ];
    const s = fakeSuite("wfm", [
      fakeCheck("wfm", "a", "pass", { requirements: ["wfm-001", "wfm-002"] }),
      fakeCheck("wfm", "b", "fail", { requirements: ["wfm-002"] }),
    ]);
    const report = await runConformance(config(), { suites: { wfm: s }, catalogue });
    expect(report.requirements).toEqual([
      {
        id: "wfm-001",
        level: "MUST",
        persona: "wfm",
        section: "s",
        text: "one",
        checklistItem: 1,
        crId: "MI-001",
        checks: ["wfm.fake.a"],
        outcome: "pass",
      },
      {
        id: "wfm-002",
        level: "MUST",
        persona: "wfm",
        section: "s",
        text: "two",
        checks: ["wfm.fake.a", "wfm.fake.b"],
        outcome: "fail",
      },
      {
        id: "wfm-003",
        level: "SHOULD",
        persona: "wfm",
        section: "s",
        text: "three",
        checks: [],
        outcome: "not-run",
      },
    ]);
  });

  it("redacts evidence and makes expectEqual details JSON-safe", async () => {
    const s = fakeSuite("wfm", [
      fakeCheck("wfm", "sec", "secret-evidence"),
      fakeCheck("wfm", "eq", "expect-equal"),
    ]);
    const report = await runConformance(config(), { suites: { wfm: s } });
    const text = JSON.stringify(report);
    expect(text).not.toContain("abcdefghijklmnop");
    expect(text).not.toContain("MIIEvQ");
    const eq = report.checks[1];
    expect(eq?.outcome).toBe("fail");
    expect(eq?.message).toBe("manifest body: /b/1: expected 3, got 2");
    expect(eq?.details).toMatchObject({ differences: [{ path: "/b/1", expected: 3, actual: 2 }] });
  });

  it("an aborted run errors the remaining checks and still closes the suite", async () => {
    const abort = new AbortController();
    const s = fakeSuite("wfm", [
      fakeCheck("wfm", "h", "hang", { timeoutMs: 5000 }),
      fakeCheck("wfm", "p", "pass"),
    ]);
    setTimeout(() => abort.abort(new Error("SIGINT")), 50);
    const report = await runConformance(config(), { suites: { wfm: s }, signal: abort.signal });
    expect(report.checks[0]).toMatchObject({ outcome: "error" });
    expect(report.checks[0]?.message).toMatch(/run aborted while this check ran \(SIGINT\)/);
    expect(report.checks[1]).toMatchObject({
      outcome: "error",
      message: "run aborted before this check started",
    });
    expect(s.log.at(-1)).toBe("close");
  });
});
