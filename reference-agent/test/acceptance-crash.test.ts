import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploymentContainers, waitRunning, waitUntil } from "./support/docker.js";
import { type Pair, startPair, summarise } from "./support/pair.js";

/**
 * Acceptance 4: kill -9 of the agent mid-install (right after `installing` reached the WFM, while
 * compose works through the three components of compose-multi), then a restart on the same state
 * directory. The agent must converge with one container per service and with every state change
 * reported exactly once, in order.
 */

const CLIENT = "acc-crash";
const DEVICE = "acc-crash-dev";

let pair: Pair;
let deploymentId: string;
let containersAtKill: number;

beforeAll(async () => {
  pair = await startPair({
    clientId: CLIENT,
    deviceId: DEVICE,
    fixtures: ["compose-multi"],
    agent: { watch: true },
  });
  deploymentId = await pair.driver.deploy(CLIENT, DEVICE, pair.apps["compose-multi"] as string);
  await waitUntil(
    "installing at the WFM",
    async () => (await pair.history(deploymentId)).some((h) => h.state === "installing"),
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  await pair.agent().kill9();
  containersAtKill = (await deploymentContainers(deploymentId)).length;
  await pair.agent().restart();
}, 120_000);

afterAll(async () => {
  await pair?.dispose();
}, 60_000);

describe("acceptance: kill -9 of the agent mid-install", () => {
  it("was killed before the install finished (the test really crashed it mid-way)", () => {
    expect(containersAtKill).toBeLessThan(3);
  });

  it("converges after the restart: installed at the WFM, exactly one container per service", async () => {
    await pair.waitReported(deploymentId, "installed", 45_000);
    const running = await waitRunning(deploymentId, 3, 20_000);
    expect(running.map((c) => c.component).sort()).toEqual(["api", "store", "web"]);
    const all = await deploymentContainers(deploymentId);
    expect(all.map((c) => c.service).sort()).toEqual(["api", "store", "web"]);
  });

  it("items 65/67: each state change reported exactly once and in order", async () => {
    await pair.waitReported(deploymentId, "installed", 45_000);
    const history = await pair.history(deploymentId);
    const { states, repeats } = summarise(history);
    expect(states.filter((s) => s !== "pending")).toEqual(["installing", "installed"]);
    expect(repeats).toEqual([]);
    const status = await waitUntil("the outbox to drain", async () => {
      const s = await pair.agent().status();
      return s.outbox.pending === 0 ? s : undefined;
    });
    expect(status.outbox.deadLettered).toBe(0);
    // Every report the agent marked delivered is in the WFM's history once, and no more.
    expect(history.length).toBe(status.outbox.delivered);
  });
});
