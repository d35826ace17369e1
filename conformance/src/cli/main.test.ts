import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fakeCheck, fakeSuite } from "../core/fake-suite.js";
import { type CliDeps, main } from "./main.js";

const dir = mkdtempSync(join(tmpdir(), "margo-conf-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configFile = join(dir, "conf.yaml");
writeFileSync(
  configFile,
  "package:\n  sources: [reg.test/a/b:1]\nwfm:\n  url: https://127.0.0.1:1\n  spiffeId: spiffe://t/margo/wfm/w\n  trustBundleFile: b.pem\n  driver: { kind: shell, commands: { info: a, reset: a, publish: a, deploy: a, update: a, undeploy: a, statuses: a, capabilities: a } }\n",
);
const knownFile = join(dir, "known.yaml");
writeFileSync(knownFile, "- package.fake.fail\n");

function deps(): CliDeps & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    suites: {
      package: fakeSuite("package", [
        fakeCheck("package", "pass", "pass", { requirements: ["package-074"] }),
        fakeCheck("package", "fail", "fail", { requirements: ["package-075"] }),
        fakeCheck("package", "error", "type-error"),
        fakeCheck("package", "should-fail", "fail", { level: "SHOULD" }),
      ]),
      wfm: fakeSuite("wfm", [fakeCheck("wfm", "pass", "pass")]),
    },
    catalogue: () => [
      { id: "package-074", level: "MUST", persona: "package", section: "s", text: "archive" },
      { id: "package-075", level: "MUST", persona: "package", section: "s", text: "chart" },
      {
        id: "package-099",
        level: "MUST",
        persona: "package",
        section: "s",
        text: "untested",
        untestable: "needs a human",
      },
    ],
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    env: {},
    cwd: dir,
  };
}

async function run(args: string[]) {
  const d = deps();
  const code = await main(args, d);
  return { code, out: d.out.join(""), err: d.err.join("") };
}

describe("margo-conformance run: exit codes", () => {
  it("0 when every selected core check passed (extended failures do not count)", async () => {
    const r = await run([
      "run",
      "--config",
      configFile,
      "--include",
      "package.fake.pass,package.fake.should",
      "--out",
      "o0",
      "--quiet",
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("conformant: yes");
    expect(readFileSync(join(dir, "o0/report.json"), "utf8")).toContain("package.fake.pass");
  });
  it("1 on a new core failure", async () => {
    const r = await run(["run", "--config", configFile, "--out", "o1"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("FAIL  package.fake.fail");
    expect(r.err).toContain("PASS  wfm.fake.pass");
    expect(r.out).toMatch(/report: .*o1\/report\.xml/);
  });
  it("2 when only known-failing core checks failed", async () => {
    const r = await run([
      "run",
      "--config",
      configFile,
      "--suite",
      "package",
      "--exclude",
      "package.fake.error",
      "--known-failing",
      "known.yaml",
      "--out",
      "o2",
    ]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("2 fail (1 known)");
  });
  it("3 when a core check errored and none failed newly", async () => {
    const r = await run([
      "run",
      "--config",
      configFile,
      "--suite",
      "package",
      "--known-failing",
      "known.yaml",
      "--format",
      "json",
      "--out",
      "o3",
    ]);
    expect(r.code).toBe(3);
  });
  it("--part extended runs only SHOULD/MAY checks", async () => {
    const r = await run([
      "run",
      "--config",
      configFile,
      "--suite",
      "package",
      "--part",
      "extended",
      "--format",
      "junit",
      "--out",
      "o4",
    ]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, "o4/report.xml"), "utf8")).toContain("package.fake.should-fail");
  });
});

describe("margo-conformance run --keep-work-dir", () => {
  const runIn = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const d = { ...deps(), workRoot: dir, env };
    const code = await main(args, d);
    return { code, out: d.out.join(""), err: d.err.join("") };
  };
  const base = ["run", "--config", configFile, "--suite", "package", "--format", "json"];

  it("keeps the work folder with the suites' folders in it and prints its path", async () => {
    const r = await runIn([...base, "--out", "k1", "--keep-work-dir"]);
    const m = /^work dir: (.+)$/m.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const kept = m?.[1] as string;
    expect(kept.startsWith(join(dir, "margo-conf-"))).toBe(true);
    // Printed before the run too, so a run that dies still told where its logs are.
    expect(r.err).toContain(`work dir (kept after the run): ${kept}`);
    expect(existsSync(join(kept, "package"))).toBe(true);
  });
  it("is off by default: nothing kept, no path printed", async () => {
    const before = readdirSync(dir).filter((n) => n.startsWith("margo-conf-")).length;
    const r = await runIn([...base, "--out", "k2"]);
    expect(r.out).not.toContain("work dir");
    expect(readdirSync(dir).filter((n) => n.startsWith("margo-conf-")).length).toBe(before);
  });
  it("can be set by MARGO_CONFORMANCE_KEEP_WORK_DIR", async () => {
    const r = await runIn([...base, "--out", "k3"], { MARGO_CONFORMANCE_KEEP_WORK_DIR: "true" });
    expect(r.out).toMatch(/^work dir: /m);
  });
  it("is a run option only", async () => {
    const r = await runIn(["list", "--keep-work-dir"]);
    expect(r.code).toBe(4);
    expect(r.err).toContain("does not apply to 'list'");
  });
});

describe("margo-conformance: usage and configuration errors exit 4", () => {
  it.each([
    [["frobnicate"], /UsageError: unknown command/],
    [[], /UsageError: no command/],
    [["run", "--config", configFile, "--bogus"], /unknown option '--bogus'/],
    [["run", "--config", configFile, "--suite", "fleet"], /unknown suite fleet/],
    [["run", "--config", configFile, "--part", "middle"], /--part takes core or extended/],
    [["run", "--config", configFile, "--format", "pdf"], /--format takes/],
    [["run", "--config", join(dir, "nope.yaml")], /ConfigError: .*cannot read config file/s],
    [["run", "--config", configFile, "--suite", "device"], /ConfigError: .*no 'device' section/s],
    [["run"], /no suite to run/],
    [["run", "--config", configFile, "--known-failing", "missing.yaml"], /KnownFailingError/],
    [["list", "--out", "x"], /does not apply to 'list'/],
  ])("%j", async (args, msg) => {
    const r = await run(args);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(msg);
  });
});

describe("margo-conformance list, catalogue, help", () => {
  it("--help prints usage and exit codes", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("margo-conformance run --config FILE");
    expect(r.out).toContain("4  usage or configuration error");
  });
  it("list --json gives ids, requirements and levels of what run would execute", async () => {
    const r = await run(["list", "--json", "--include", "package.", "--part", "core"]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as Array<{
      id: string;
      level: string;
      requirements: string[];
      part: string;
    }>;
    expect(rows.map((x) => x.id)).toEqual([
      "package.fake.pass",
      "package.fake.fail",
      "package.fake.error",
    ]);
    expect(rows[0]).toMatchObject({ level: "MUST", part: "core", requirements: ["package-074"] });
  });
  it("list with --config uses the configured suites and selection", async () => {
    const r = await run(["list", "--config", configFile, "--suite", "wfm"]);
    expect(r.out).toContain("wfm.fake.pass");
    expect(r.out).not.toContain("package.fake");
    expect(r.out).toContain("1 checks");
  });
  it("catalogue shows coverage and counts", async () => {
    const r = await run(["catalogue", "--json"]);
    const doc = JSON.parse(r.out) as {
      requirements: Array<{ id: string; checks: string[] }>;
      counts: Record<string, number>;
    };
    expect(doc.requirements.find((x) => x.id === "package-074")?.checks).toEqual([
      "package.fake.pass",
    ]);
    expect(doc.counts).toEqual({
      requirements: 3,
      must: 3,
      mustCovered: 2,
      mustUntestable: 1,
      mustKnownGaps: 0,
      checks: 5,
    });
    const text = await run(["catalogue"]);
    expect(text.out).toContain(
      "3 requirements, 3 MUST (2 covered by checks, 1 untestable, 0 known gaps), 5 checks",
    );
  });
});
