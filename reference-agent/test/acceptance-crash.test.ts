import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentStoreReader, openReadOnly } from "../src/state/sqlite-store.js";
import { deploymentContainers, waitRunning, waitUntil } from "./support/docker.js";
import { historyBodies, type Pair, startPair, summarise } from "./support/pair.js";

/**
 * Acceptance 4: kill -9 of the agent mid-install (compose works through the three components of
 * compose-multi), then a restart on the same state directory. The agent must converge with one
 * container per service and with every state change reported, in order.
 *
 * The outbox is exactly-once everywhere except one documented window: after the WFM stored a
 * report and before the agent committed it as delivered, a crash resends that entry (identical
 * bytes) on restart. So there are two scenarios:
 * - the kill lands mid-install but between deliveries (nothing pending at the kill): exactly once;
 * - the kill lands right after a report reached the WFM, possibly inside that window: nothing lost
 *   and at most one identical resend of the entry that was in flight, never more.
 */

interface Crash {
  pair: Pair;
  deploymentId: string;
  containersAtKill: number;
  /** Pending outbox bodies read from the DB right after the kill, oldest first. */
  pendingAtKill: string[];
  /** The WFM's history (canonical bodies) right after the kill, before the restart. */
  wfmAtKill: string[];
}

/** Deploy compose-multi, kill -9 the agent once `ready` says so, restart it on the same state. */
async function crashMidInstall(
  clientId: string,
  ready: (store: AgentStoreReader, containers: number) => boolean,
): Promise<Crash> {
  const pair = await startPair({
    clientId,
    deviceId: `${clientId}-dev`,
    fixtures: ["compose-multi"],
    agent: { watch: true },
  });
  const deploymentId = await pair.driver.deploy(
    clientId,
    `${clientId}-dev`,
    pair.apps["compose-multi"] as string,
  );
  await waitUntil(
    "installing at the WFM",
    async () => (await pair.history(deploymentId)).some((h) => h.state === "installing"),
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  const store = openReadOnly(pair.agent().config.stateDir);
  let killed: Promise<void> | undefined;
  try {
    await waitUntil(
      "a moment to kill the agent",
      async () => {
        const containers = (await deploymentContainers(deploymentId)).length;
        if (containers >= 3) throw new Error("the install finished before a kill moment came");
        // Read and kill in one synchronous stretch: no await between the outbox check and the
        // SIGKILL, so the agent has no turn of ours in which to start a delivery we missed.
        if (!ready(store, containers)) return false;
        killed = pair.agent().kill9();
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 5 },
    );
    await killed;
    const containersAtKill = (await deploymentContainers(deploymentId)).length;
    const pendingAtKill = store.outboxPending(100).map((e) => Buffer.from(e.body).toString("utf8"));
    const wfmAtKill = historyBodies(await pair.history(deploymentId));
    await pair.agent().restart();
    return { pair, deploymentId, containersAtKill, pendingAtKill, wfmAtKill };
  } finally {
    store.close();
  }
}

/** Wait for the install to converge and the outbox to drain; what the WFM and the agent hold. */
async function settled(c: Crash) {
  await c.pair.waitReported(c.deploymentId, "installed", 45_000);
  const status = await waitUntil("the outbox to drain", () => {
    const s = c.pair.outboxStats();
    return s.pending === 0 ? s : undefined;
  });
  const history = await c.pair.history(c.deploymentId);
  return { status, history, delivered: c.pair.deliveredReports(c.deploymentId) };
}

describe("acceptance: kill -9 of the agent mid-install, between deliveries", () => {
  let crash: Crash;
  beforeAll(async () => {
    // At least one component up (really mid-install), and nothing pending: no POST in flight,
    // so the kill cannot land in the resend window.
    crash = await crashMidInstall(
      "acc-crash",
      (store, containers) => containers >= 1 && store.outboxStats().pending === 0,
    );
  }, 120_000);
  afterAll(async () => {
    await crash?.pair.dispose();
  }, 60_000);

  it("was killed mid-install (1 or 2 of 3 containers) with no report in flight", () => {
    expect(crash.containersAtKill).toBeGreaterThanOrEqual(1);
    expect(crash.containersAtKill).toBeLessThan(3);
    expect(crash.wfmAtKill.length).toBeGreaterThan(0);
    // An entry enqueued after our check but before the SIGKILL may exist; it must not have
    // reached the WFM already, or the kill did land inside a delivery.
    for (const body of crash.pendingAtKill) expect(crash.wfmAtKill).not.toContain(body);
  });

  it("converges after the restart: installed at the WFM, exactly one container per service", async () => {
    await crash.pair.waitReported(crash.deploymentId, "installed", 45_000);
    const running = await waitRunning(crash.deploymentId, 3, 20_000);
    expect(running.map((c) => c.component).sort()).toEqual(["api", "store", "web"]);
    const all = await deploymentContainers(crash.deploymentId);
    expect(all.map((c) => c.service).sort()).toEqual(["api", "store", "web"]);
  });

  it("items 65/67: each state change reported exactly once and in order", async () => {
    const { status, history, delivered } = await settled(crash);
    const { states, repeats } = summarise(history);
    expect(states.filter((s) => s !== "pending")).toEqual(["installing", "installed"]);
    expect(repeats).toEqual([]);
    expect(status.deadLettered).toBe(0);
    // Exactly once, in order: the WFM holds byte for byte the agent's delivered outbox, in seq
    // order, across the crash (reports from both runs of the agent).
    expect(historyBodies(history)).toEqual(delivered.map((d) => d.body));
    expect(delivered.length).toBeGreaterThanOrEqual(3);
  });
});

describe("acceptance: kill -9 right after a report reached the WFM (the at-least-once window)", () => {
  let crash: Crash;
  beforeAll(async () => {
    // No outbox condition: the kill follows `installing` at the WFM as fast as the test can, so
    // it may fall between the WFM's 2xx and the agent marking the entry delivered.
    crash = await crashMidInstall("acc-crash-win", () => true);
  }, 120_000);
  afterAll(async () => {
    await crash?.pair.dispose();
  }, 60_000);

  it("converges with exactly one container per service", async () => {
    expect(crash.containersAtKill).toBeLessThan(3);
    await crash.pair.waitReported(crash.deploymentId, "installed", 45_000);
    const all = await waitRunning(crash.deploymentId, 3, 20_000);
    expect(all.map((c) => c.component).sort()).toEqual(["api", "store", "web"]);
  });

  it("items 65/67: no report lost, at most one identical resend of the entry in flight", async () => {
    const { status, history, delivered } = await settled(crash);
    expect(status.deadLettered).toBe(0);
    const bodies = historyBodies(history);
    // A resend shows as a byte-identical neighbour in the WFM's history.
    const resent = bodies.flatMap((b, i) => (i > 0 && b === bodies[i - 1] ? [i] : []));
    expect(resent.length).toBeLessThanOrEqual(1);
    const [at] = resent;
    if (at !== undefined) {
      // Only the entry that was pending at the kill can be resent.
      expect(crash.pendingAtKill).toContain(bodies[at]);
    }
    // Without the resend, the WFM holds exactly the delivered outbox, in order: nothing lost.
    const once = bodies.filter((_b, i) => i !== at);
    expect(once).toEqual(delivered.map((d) => d.body));
    const { states } = summarise(history);
    expect(states.filter((s) => s !== "pending")).toEqual(["installing", "installed"]);
  });
});
