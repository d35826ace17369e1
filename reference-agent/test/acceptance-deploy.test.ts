import { arch, availableParallelism, cpus } from "node:os";
import { CpuArchitecture } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, waitRunning, waitUntil } from "./support/docker.js";
import { type Pair, startPair, summarise } from "./support/pair.js";

/**
 * Acceptance 1: a real reference WFM (child process), a real agent (child process), the real
 * Docker Engine and registry. compose-single is deployed BEFORE the agent first connects, so the
 * order capabilities -> status is the agent's own doing, not the test's.
 */

const CLIENT = "acc-deploy";
const DEVICE = "acc-deploy-dev";

let pair: Pair;
let deploymentId: string;
let capsReceivedAt: number;

beforeAll(async () => {
  pair = await startPair({
    clientId: CLIENT,
    deviceId: DEVICE,
    fixtures: ["compose-single"],
    agent: false,
  });
  deploymentId = await pair.driver.deploy(CLIENT, DEVICE, pair.apps["compose-single"] as string);
  await pair.startAgent({ watch: true });
  const caps = await waitUntil(
    "capabilities at the WFM",
    async () => {
      const c = await pair.driver.capabilities(CLIENT, DEVICE);
      return c.found ? c : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 25 },
  );
  capsReceivedAt = caps.receivedAt?.getTime() ?? Number.NaN;
}, 120_000);

afterAll(async () => {
  await pair?.dispose();
}, 60_000);

describe("acceptance: compose-single through the real WFM", () => {
  it("the container runs and the WFM's latest report is installed", async () => {
    const running = await waitRunning(deploymentId, 1);
    expect(running[0]?.component).toBe("hello");
    const latest = await pair.waitReported(deploymentId, "installed");
    expect(latest.components).toEqual([{ name: "hello", state: "installed" }]);
  });

  it("item 65/67: the WFM history is installing then installed, no report repeated", async () => {
    await pair.waitReported(deploymentId, "installed");
    const history = await pair.history(deploymentId);
    const { states, repeats } = summarise(history);
    // pending is allowed before installing (item 67 lists it), nothing else.
    expect(states.filter((s) => s !== "pending")).toEqual(["installing", "installed"]);
    expect(repeats).toEqual([]);
    expect(history.every((h) => h.adoptedManifestVersion > 0n)).toBe(true);
  });

  it("item 89: the workload container has HTTP_OTEL_EXPORTER_OTLP_ENDPOINT", async () => {
    const [c] = await waitRunning(deploymentId, 1);
    const env = await containerEnv(c?.id as string);
    expect(env.HTTP_OTEL_EXPORTER_OTLP_ENDPOINT).toBe(pair.agent().config.otel.httpEndpoint);
  });

  it("item 25: capabilities reached the WFM before the first status report", async () => {
    await pair.waitReported(deploymentId, "installed");
    const [first] = await pair.history(deploymentId);
    expect(Number.isFinite(capsReceivedAt)).toBe(true);
    expect(first?.receivedAt).toBeGreaterThanOrEqual(capsReceivedAt);
  });

  it("item 30: capabilities carry real host facts", async () => {
    const caps = await pair.driver.capabilities(CLIENT, DEVICE);
    const p = caps.capabilities?.properties;
    expect(p?.id).toBe(DEVICE);
    expect(p?.otelCollector).toBe(true);
    const expectedArch =
      arch() === "x64"
        ? CpuArchitecture.CPU_ARCHITECTURE_AMD64
        : arch() === "arm64"
          ? CpuArchitecture.CPU_ARCHITECTURE_ARM64
          : CpuArchitecture.CPU_ARCHITECTURE_ARM;
    expect(p?.cpus.length).toBeGreaterThan(0);
    expect(p?.cpus.every((c) => c.architecture === expectedArch)).toBe(true);
    // The cores this process can use, or the machine's (they agree here unless a cgroup limits).
    expect([availableParallelism(), cpus().length]).toContain(
      Math.max(...(p?.cpus ?? []).map((c) => c.cores)),
    );
    expect(p?.memory).toMatch(/^\d+(\.\d+)?\s*(Ki|Mi|Gi|Ti)$/);
    expect(p?.storage).toMatch(/^\d+(\.\d+)?\s*(Ki|Mi|Gi|Ti)$/);
    // Docker is here, helm is not: the types are what the probes found, not a fixed list.
    expect(p?.supportedDeploymentTypes).toContain("compose");
    expect(p?.supportedDeploymentTypes).not.toContain("helm");
    expect(p?.supportedRuntimes.length).toBeGreaterThan(0);
    expect(caps.capabilities?.labels).toMatchObject({ "margo-fixtures": "enabled" });
  });
});
