import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Evidence } from "../../../core/types.js";
import { WfmDriverRefused, WfmDriverUnsupported } from "../context.js";
import { EvidenceRecorder } from "./recorder.js";
import { ShellWfmDriver, shellQuote, substitute } from "./shell-driver.js";

describe("substitute", () => {
  it("quotes every value so ids cannot inject shell syntax", () => {
    expect(substitute("undeploy {deploymentId}", { deploymentId: "x'; rm -rf /; '" })).toBe(
      `undeploy 'x'\\''; rm -rf /; '\\'''`,
    );
  });
  it("turns a known placeholder without value into '' and leaves other braces alone", () => {
    expect(substitute('x {version} {"a":1} {other}', { version: undefined })).toBe(
      `x '' {"a":1} {other}`,
    );
  });
  it("shellQuote round-trips through sh", async () => {
    const { execFileSync } = await import("node:child_process");
    const v = `a b'c"d$e\`f\\g`;
    expect(execFileSync("sh", ["-c", `printf %s ${shellQuote(v)}`]).toString()).toBe(v);
  });
});

describe("ShellWfmDriver", async () => {
  const dir = await mkdtemp(join(tmpdir(), "margo-conf-shell-"));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, "fake.sh");
  // A fake vendor CLI: deploy echoes its inputs back in the id, refuse exits 64, broken exits 1
  // (what sh does for any failing line), boom exits 3.
  await writeFile(
    script,
    `#!/bin/sh
case "$1" in
  deploy) printf '{"deploymentId":"%s|%s|%s"}' "$2" "$3" "$(sed 's/"/\\\\"/g' "$4")" ;;
  refuse) echo "no such deployment" >&2; exit 64 ;;
  broken) echo "sh: vendor-cli: not found" >&2; exit 1 ;;
  boom) echo "crashed" >&2; exit 3 ;;
  garbage) echo "not json" ;;
esac
`,
  );
  await chmod(script, 0o755);
  const seen: Evidence[] = [];
  const recorder = new EvidenceRecorder();
  recorder.bind((e) => seen.push(e));
  const cmd = (op: string) => `${script} ${op}`;
  const driverCommands = {
    info: cmd("garbage"),
    reset: cmd("boom"),
    publish: cmd("garbage"),
    deploy: `${script} deploy {applicationId} {deviceId} {parametersFile}`,
    update: cmd("refuse"),
    undeploy: cmd("refuse"),
    statuses: cmd("broken"),
    capabilities: cmd("boom"),
  };
  const driver = new ShellWfmDriver({
    recorder,
    config: { kind: "shell", commands: driverCommands },
  });

  it("substitutes values and a parameters file, parses stdout as the response", async () => {
    const r = await driver.deploy({
      applicationId: "app one",
      clientId: "c",
      deviceId: "dev'1",
      parameters: { port: 8080 },
    });
    expect(r.deploymentId).toBe(`app one|dev'1|{"port":8080}`);
    expect(seen.at(-1)).toMatchObject({ kind: "command", exitCode: 0 });
  });
  it("exit 64 is a refusal; exit 1, other exits and bad output are errors", async () => {
    await expect(driver.undeploy("d")).rejects.toBeInstanceOf(WfmDriverRefused);
    const broken = await driver.statuses({}).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(Error);
    expect(broken).not.toBeInstanceOf(WfmDriverRefused);
    const boom = await driver.reset().catch((e: unknown) => e);
    expect(boom).toBeInstanceOf(Error);
    expect(boom).not.toBeInstanceOf(WfmDriverRefused);
    await expect(driver.info()).rejects.toThrow(/no JSON/);
  });
  it("an operation without a command is unsupported, not refused", async () => {
    const partial = new ShellWfmDriver({
      recorder,
      config: {
        kind: "shell",
        commands: { ...driverCommands, capabilities: "" },
      },
    });
    await expect(partial.capabilities("c", "d")).rejects.toBeInstanceOf(WfmDriverUnsupported);
  });
});
