import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRootCa, encodeAnchorsBundle } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN_FILE } from "../src/cli/run-file.js";
import { loadConfig } from "../src/config.js";
import { SqliteAgentStore } from "../src/state/sqlite-store.js";

/**
 * `margo-agent` as a separate process, the way an operator and the acceptance harness run it:
 * init, status (text and --json) and usage errors with their exit codes. `run` is exercised by
 * the acceptance tests against a real WFM.
 */
const MARGO_AGENT = fileURLToPath(new URL("../bin/margo-agent", import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function agentCli(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(MARGO_AGENT, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const root = mkdtempSync(join(tmpdir(), "margo-agent-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BASE = ["--device-id", "edge-1", "--wfm-url", "https://127.0.0.1:9443", "--identity-dir"];

describe("margo-agent init", () => {
  it("writes agent.json (0600) that loads, with the flags applied; refuses to overwrite it", async () => {
    const stateDir = join(root, "init-ok");
    const r = await agentCli([
      "init",
      "--state-dir",
      stateDir,
      ...BASE,
      join(root, "id"),
      "--grpc-address",
      "127.0.0.1:9444",
      "--watch",
      "--poll-ms",
      "750",
      "--docker-socket",
      "/run/other.sock",
      "--bundle-url",
      "https://127.0.0.1:9445/bundle",
      "--driver-port",
      "0",
    ]);
    expect(r).toMatchObject({ code: 0 });
    const file = join(stateDir, "agent.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const c = await loadConfig(file);
    expect(c.stateDir).toBe(stateDir);
    expect(c.identityDir).toBe(join(root, "id"));
    expect(c.wfm).toEqual({
      url: "https://127.0.0.1:9443",
      grpcAddress: "127.0.0.1:9444",
      watch: true,
    });
    expect(c.polling.periodMs).toBe(750);
    expect(c.compose.dockerSocket).toBe("/run/other.sock");
    expect(c.trust.bundleUrl).toBe("https://127.0.0.1:9445/bundle");
    expect(c.driver).toEqual({ host: "127.0.0.1", port: 0 });

    const before = readFileSync(file, "utf8");
    const again = await agentCli(["init", "--state-dir", stateDir, ...BASE, join(root, "other")]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists");
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("as a process: a usage error exits 2 naming the option, --help exits 0, no command exits 2", async () => {
    // The full table of usage errors runs in-process (src/cli/main.test.ts); this proves the
    // shim turns runCli's code into the process exit code.
    const [bad, help, none] = await Promise.all([
      agentCli(["init", "--state-dir", join(root, "x5"), ...BASE, "/id", "--nope"]),
      agentCli(["status", "--help"]),
      agentCli([]),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--nope");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("margo-agent status");
    expect(none.code).toBe(2);
  });
});

describe("margo-agent status", () => {
  let stateDir: string;
  let configFile: string;
  let anchorsSequence: bigint;

  beforeAll(async () => {
    stateDir = join(root, "status");
    const init = await agentCli(["init", "--state-dir", stateDir, ...BASE, join(root, "id")]);
    expect(init.code).toBe(0);
    configFile = join(stateDir, "agent.json");
  });

  it("exit 3 when no agent ever ran on the state dir", async () => {
    const r = await agentCli(["status", "--config", configFile]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("agent.sqlite");
  });

  it("--json: manifest, deployments with components and errors, outbox, errors, trust; readable while the store is open for writing", async () => {
    const store = SqliteAgentStore.open(stateDir);
    const yaml = Buffer.from(
      "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nmetadata:\n  name: hello-app\n  namespace: margo\n",
    );
    store.acceptManifest({
      manifestVersion: 18446744073709551615n,
      etag: '"sha256:feed"',
      body: Buffer.from("{}"),
      deployments: [{ deploymentId: "d-1", digest: "sha256:aaaa", yaml }],
    });
    const rec = store.getDeployment("d-1");
    if (!rec) throw new Error("accepted deployment missing");
    store.saveDeployment(
      {
        ...rec,
        state: "failed",
        error: { code: "PULL_FAILED", source: "web", message: "manifest unknown" },
        components: [
          {
            name: "web",
            state: "failed",
            error: { code: "PULL_FAILED", source: "web", message: "manifest unknown" },
          },
        ],
      },
      Buffer.from('{"deploymentId":"d-1"}'),
    );
    const delivered = store.saveDeployment({ ...rec, state: "installing" }, Buffer.from("{}"));
    store.recordError("digest-mismatch", "bundle digest differs from the manifest");
    const ca = await createRootCa({ trustDomain: "example.org", lifetimeSeconds: 3600 });
    anchorsSequence = 42n;
    store.saveTrust({
      bundleJson: encodeAnchorsBundle([ca.certDer], { sequence: anchorsSequence }),
      sequence: anchorsSequence,
      acceptedAt: 1_700_000_000_000,
    });
    expect(delivered).toBeDefined();
    store.outboxDelivered((store.outboxPending(1)[0]?.seq ?? 0) + 1);

    try {
      // Our own pid: alive, so the run file counts as a running agent.
      writeFileSync(
        join(stateDir, RUN_FILE),
        JSON.stringify({
          pid: process.pid,
          startedAt: 1,
          driverPort: null,
          watching: true,
          runtimes: [{ type: "compose", available: true, version: "docker 20.10" }],
          updatedAt: 2,
        }),
      );
      const r = await agentCli(["status", "--json", "--config", configFile]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.deviceId).toBe("edge-1");
      expect(s.running).toBe(true);
      expect(s.watching).toBe(true);
      expect(s.runtimes).toEqual([{ type: "compose", available: true, version: "docker 20.10" }]);
      expect(s.manifestVersion).toBe("18446744073709551615");
      expect(s.etag).toBe('"sha256:feed"');
      expect(s.deployments).toEqual([
        expect.objectContaining({
          deploymentId: "d-1",
          name: "hello-app",
          desired: "present",
          state: "installing",
          adoptedManifestVersion: "18446744073709551615",
        }),
      ]);
      expect(s.outbox).toEqual({ pending: 1, delivered: 1, deadLettered: 0 });
      expect(s.pendingReports).toEqual([expect.objectContaining({ deploymentId: "d-1" })]);
      expect(s.lastErrors).toEqual([
        expect.objectContaining({
          kind: "digest-mismatch",
          message: "bundle digest differs from the manifest",
        }),
      ]);
      expect(s.trust).toEqual({ anchors: 1, sequence: "42", acceptedAt: 1_700_000_000_000 });

      // The failed state with its error, as text.
      store.saveDeployment({
        ...rec,
        state: "failed",
        error: { code: "PULL_FAILED", source: "web", message: "manifest unknown" },
        components: [
          {
            name: "web",
            state: "failed",
            error: { code: "PULL_FAILED", source: "web", message: "manifest unknown" },
          },
        ],
      });
      rmSync(join(stateDir, RUN_FILE));
      const text = await agentCli(["status", "--config", configFile]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("not running");
      expect(text.stdout).toContain("version 18446744073709551615");
      expect(text.stdout).toContain("hello-app d-1: failed");
      expect(text.stdout).toContain("web: failed - PULL_FAILED: manifest unknown");
      expect(text.stdout).toContain("digest-mismatch: bundle digest differs");
      expect(text.stdout).toContain("1 pending, 1 delivered, 0 dead-lettered");
      const json = JSON.parse(
        (await agentCli(["status", "--json", "--config", configFile])).stdout,
      );
      expect(json.running).toBe(false);
      expect(json.watching).toBe(false);
      expect(json.deployments[0].components).toEqual([
        {
          name: "web",
          state: "failed",
          error: { code: "PULL_FAILED", source: "web", message: "manifest unknown" },
        },
      ]);
    } finally {
      store.close();
    }
  });
});
