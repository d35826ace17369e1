import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeploymentState } from "@margo/proto";
import { writeCredentials } from "@margo/proto/identity/light";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  registerFixtureApp,
  TEST_REGISTRY,
} from "../../reference-wfm/test/support/fixture-apps.js";
import { startTestWfm, type TestWfm } from "../../reference-wfm/test/support/start-wfm.js";
import { startAgent, startAgentWith } from "../src/agent.js";
import type { RunningAgent } from "../src/agent-api.js";
import { defaultConfig } from "../src/config.js";
import type { LogEvent } from "../src/log.js";
import { SqliteAgentStore } from "../src/state/sqlite-store.js";
import { statusBody } from "../src/status/status-document.js";
import { type WfmApi, WfmRequestError } from "../src/wfm/api.js";
import { cleanupDevices, deploymentContainers, waitUntil } from "./support/docker.js";

/**
 * The composed agent in this process against a real reference WFM (in-process, mTLS, gRPC
 * watch) and the real Docker Engine and registry: the shortest path through every part. The
 * broader acceptance (CLI, child processes, kill -9) lives in the acceptance-*.test.ts files.
 */

const CLIENT = `smoke-${randomBytes(3).toString("hex")}`;
const DEVICE = `margo-t-${CLIENT}`;

let wfm: TestWfm;
let agent: RunningAgent | undefined;
let stateDir: string;
let identityDir: string;
let applicationId: string;
const logs: LogEvent[] = [];

beforeAll(async () => {
  wfm = await startTestWfm({ grpc: true });
  stateDir = await mkdtemp(join(tmpdir(), "margo-agent-smoke-"));
  identityDir = join(stateDir, "identity");
  await writeCredentials(identityDir, await wfm.admit(CLIENT));
  applicationId = (await registerFixtureApp(wfm.core, "compose-single")).applicationId;
});

afterAll(async () => {
  await agent?.close();
  await wfm?.dispose();
  await cleanupDevices([DEVICE]);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

async function latestState(deploymentId: string): Promise<DeploymentState | undefined> {
  const [latest] = await wfm.core.listStatuses({ deploymentId });
  return latest?.status?.status?.state;
}

describe("startAgent against the reference WFM and Docker", () => {
  it("deploys a fixture app (container runs, WFM holds installed), then undeploys it (removed, no containers)", async () => {
    const config = defaultConfig(stateDir, {
      deviceId: DEVICE,
      wfmUrl: `https://127.0.0.1:${wfm.managementPort}`,
      identityDir,
    });
    config.wfm.grpcAddress = `127.0.0.1:${wfm.grpcPort}`;
    config.wfm.watch = true;
    config.polling.periodMs = 1_000;
    config.driftCheckMs = 1_000;
    config.plainHttpRegistries = [TEST_REGISTRY];
    agent = await startAgent(config, { log: (e) => logs.push(e) });

    // Capabilities first (item 25): the device exists at the WFM before anything is deployed.
    await waitUntil("capabilities at the WFM", () => wfm.core.getDevice(CLIENT, DEVICE), {
      timeoutMs: 10_000,
    });
    const dep = await wfm.core.createDeployment({
      applicationId,
      clientId: CLIENT,
      deviceId: DEVICE,
    });
    const deploymentId = dep.deploymentId;
    await waitUntil(
      "installed at the WFM",
      async () => (await latestState(deploymentId)) === DeploymentState.DEPLOYMENT_STATE_INSTALLED,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const running = await deploymentContainers(deploymentId);
    expect(running.length).toBeGreaterThan(0);
    expect(running.every((c) => c.state === "running")).toBe(true);
    const history = await wfm.core.listStatuses({ deploymentId, includeHistory: true });
    const states = history.map((h) => h.status?.status?.state);
    expect(states[0]).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLING);
    expect(states.at(-1)).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLED);
    const view = agent.view();
    expect(view.deployments.map((d) => [d.deploymentId, d.state])).toEqual([
      [deploymentId, "installed"],
    ]);
    expect(view.manifestVersion).toBeGreaterThan(0n);

    await wfm.core.deleteDeployment(deploymentId);
    await waitUntil(
      "removed at the WFM",
      async () => (await latestState(deploymentId)) === DeploymentState.DEPLOYMENT_STATE_REMOVED,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(await deploymentContainers(deploymentId)).toEqual([]);
    await waitUntil("record forgotten", () => agent?.view().deployments.length === 0, {
      timeoutMs: 5_000,
    });
    expect(logs.filter((l) => l.level === "error")).toEqual([]);
  });

  it("reset() removes every workload and forgets the state, then converges again from the WFM", async () => {
    if (!agent) throw new Error("agent not started by the first test");
    const dep = await wfm.core.createDeployment({
      applicationId,
      clientId: CLIENT,
      deviceId: DEVICE,
    });
    const running = await waitUntil(
      "a running container",
      async () => {
        const list = await deploymentContainers(dep.deploymentId);
        return list.some((c) => c.state === "running") ? list : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const before = new Set(running.map((c) => c.id));
    await agent.reset();
    const left = await deploymentContainers(dep.deploymentId);
    expect(left.filter((c) => before.has(c.id))).toEqual([]);
    // The WFM still wants the deployment: the reset agent reports capabilities, syncs from
    // version 0 and installs it anew.
    const again = await waitUntil(
      "reinstalled after reset",
      async () => {
        const list = await deploymentContainers(dep.deploymentId);
        return list.some((c) => c.state === "running" && !before.has(c.id)) ? list : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(again.length).toBe(running.length);
    await waitUntil("installed in the agent", () =>
      agent
        ?.view()
        .deployments.some((d) => d.deploymentId === dep.deploymentId && d.state === "installed"),
    );
  });

  it("item 25 / digest 5.7: with reports pending at start, the first request the WFM sees is the capabilities PUT; an outage ends in a forced PUT", async () => {
    if (!agent) throw new Error("agent not started by the first test");
    const config = agent.config;
    await agent.close();
    agent = undefined;
    // Owe the WFM a report before the agent starts again.
    const store = SqliteAgentStore.open(stateDir);
    const rec = store.listDeployments()[0];
    if (!rec) throw new Error("no deployment left by the previous test");
    store.saveDeployment(rec, statusBody(rec, DEVICE));
    expect(store.outboxPending(10).length).toBeGreaterThan(0);
    store.close();

    const calls: string[] = [];
    let manifestDown = false;
    const seen = <T>(name: string, call: () => Promise<T>): Promise<T> => {
      calls.push(name);
      return call();
    };
    const record = (api: WfmApi): WfmApi => ({
      putCapabilities: (d, b) => seen("put", () => api.putCapabilities(d, b)),
      deleteCapabilities: (d) => seen("delete", () => api.deleteCapabilities(d)),
      getManifest: (etag) => {
        calls.push("manifest");
        if (manifestDown) {
          return Promise.reject(
            new WfmRequestError("network", "simulated outage", {
              retryable: true,
              backoff: "exponential",
            }),
          );
        }
        return api.getManifest(etag);
      },
      getArtifact: (u) => seen("artifact", () => api.getArtifact(u)),
      postStatus: (d, b) => seen("status", () => api.postStatus(d, b)),
      notBefore: () => api.notBefore(),
      resetConnections: () => api.resetConnections(),
      close: () => api.close(),
    });
    agent = await startAgentWith(config, { log: (e) => logs.push(e) }, { wrapApi: record });
    await waitUntil("owed report delivered", () => agent?.view().outbox.pending === 0, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    expect(calls[0]).toBe("put");
    expect(calls.indexOf("put")).toBeLessThan(calls.indexOf("status"));

    // A run of failed polls, then the WFM answers again: the capabilities are PUT again.
    manifestDown = true;
    const putsBefore = calls.filter((c) => c === "put").length;
    const failedAt = calls.length;
    await waitUntil(
      "two failed polls",
      () => calls.slice(failedAt).filter((c) => c === "manifest").length >= 2,
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    expect(calls.filter((c) => c === "put").length).toBe(putsBefore);
    manifestDown = false;
    agent.syncNow();
    await waitUntil(
      "capabilities re-sent after the outage",
      () => calls.filter((c) => c === "put").length > putsBefore,
      { timeoutMs: 15_000, intervalMs: 50 },
    );
  });
});
