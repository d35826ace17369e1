import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitRunning, waitUntil } from "./support/docker.js";
import { historyBodies, type Pair, startPair, summarise } from "./support/pair.js";

/**
 * Acceptance 5: the WFM goes away while the agent has reports to send. The deployment is created,
 * the WFM stopped as soon as the agent picked it up (the first report reached the WFM), so the
 * rest of the install is reported into the outbox; the WFM then returns on the same ports and
 * every report must arrive, in order, none lost or repeated.
 */

const CLIENT = "acc-down";
const DEVICE = "acc-down-dev";

let pair: Pair;
let deploymentId: string;
let pendingWhileDown = 0;

beforeAll(async () => {
  pair = await startPair({
    clientId: CLIENT,
    deviceId: DEVICE,
    fixtures: ["compose-multi"],
    agent: { watch: true },
  });
  deploymentId = await pair.driver.deploy(CLIENT, DEVICE, pair.apps["compose-multi"] as string);
  await waitUntil(
    "the first report at the WFM",
    async () => (await pair.history(deploymentId)).length > 0,
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  await pair.wfm.stop();
  // The install goes on without the WFM; its reports wait in the outbox.
  await waitRunning(deploymentId, 3, 45_000);
  const s = await waitUntil(
    "installed held locally with reports pending",
    async () => {
      const st = await pair.agent().status();
      const d = st.deployments.find((x) => x.deploymentId === deploymentId);
      return d?.state === "installed" && st.outbox.pending > 0 ? st : undefined;
    },
    { timeoutMs: 20_000 },
  );
  pendingWhileDown = s.outbox.pending;
  await pair.wfm.restart();
}, 150_000);

afterAll(async () => {
  await pair?.dispose();
}, 60_000);

describe("acceptance: WFM down while statuses are pending", () => {
  it("reports piled up in the durable outbox while the WFM was down", () => {
    expect(pendingWhileDown).toBeGreaterThan(0);
  });

  it("all are delivered in order after the WFM returns on the same address", async () => {
    const status = await waitUntil(
      "the outbox to drain",
      async () => {
        const st = await pair.agent().status();
        return st.outbox.pending === 0 ? st : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    const latest = await pair.waitReported(deploymentId, "installed", 10_000);
    expect(latest.components.map((c) => [c.name, c.state])).toEqual([
      ["store", "installed"],
      ["api", "installed"],
      ["web", "installed"],
    ]);
    const history = await pair.history(deploymentId);
    const { states, repeats } = summarise(history);
    expect(states.filter((s) => s !== "pending")).toEqual(["installing", "installed"]);
    expect(repeats).toEqual([]);
    expect(status.outbox.deadLettered).toBe(0);
    expect(history.length).toBe(status.outbox.delivered);
    // The WFM's history, in receipt order, is byte for byte the agent's delivered outbox in seq
    // (enqueue) order: nothing lost, repeated, altered or reordered across the outage.
    const delivered = pair.deliveredReports(deploymentId);
    expect(delivered.length).toBeGreaterThanOrEqual(pendingWhileDown);
    expect(historyBodies(history)).toEqual(delivered.map((d) => d.body));
  });
});
