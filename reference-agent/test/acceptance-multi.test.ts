import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  containerCreatedMs,
  containerEnv,
  deploymentContainers,
  docker,
  type WorkloadContainer,
  waitRunning,
  waitUntil,
} from "./support/docker.js";
import { type Pair, startPair, summarise } from "./support/pair.js";

/**
 * Acceptance 2: compose-multi (store, api, web; parameters with targets) through the real WFM:
 * listed install order, a parameter change through UpdateDeployment, and undeploy down to nothing.
 */

const CLIENT = "acc-multi";
const DEVICE = "acc-multi-dev";

let pair: Pair;
let deploymentId: string;
let before: WorkloadContainer[];

const byComponent = (cs: WorkloadContainer[], name: string) => {
  const c = cs.find((x) => x.component === name);
  if (!c) throw new Error(`no container of component ${name} in ${JSON.stringify(cs)}`);
  return c;
};

beforeAll(async () => {
  pair = await startPair({
    clientId: CLIENT,
    deviceId: DEVICE,
    fixtures: ["compose-multi"],
    agent: { watch: true },
  });
  deploymentId = await pair.driver.deploy(CLIENT, DEVICE, pair.apps["compose-multi"] as string, {
    greeting: "first greeting",
  });
  before = await waitRunning(deploymentId, 3, 45_000);
  await pair.waitReported(deploymentId, "installed");
}, 120_000);

afterAll(async () => {
  await pair?.dispose();
}, 60_000);

describe("acceptance: compose-multi through the real WFM", () => {
  it("item 72: components are installed in the listed order (store, api, web)", async () => {
    const created = await Promise.all(
      ["store", "api", "web"].map((n) => containerCreatedMs(byComponent(before, n).id)),
    );
    expect(created).toEqual([...created].sort((a, b) => a - b));
    // wait: true on store and api: the next component starts only once the previous one runs.
    const storeStarted = Date.parse(
      (await docker.getContainer(byComponent(before, "store").id).inspect()).State.StartedAt,
    );
    expect(created[1]).toBeGreaterThanOrEqual(storeStarted);
  });

  it("parameters reach their targets; every container has the OTel endpoint (item 89)", async () => {
    const web = await containerEnv(byComponent(before, "web").id);
    expect(web.GREETING).toBe("first greeting");
    expect(web.API_PORT).toBe("8081");
    for (const c of before) {
      expect((await containerEnv(c.id)).HTTP_OTEL_EXPORTER_OTLP_ENDPOINT).toBe(
        pair.agent().config.otel.httpEndpoint,
      );
    }
  });

  it("a parameter change recreates the affected container with the new value", async () => {
    const [reported] = await pair.driver.listStatuses({ deploymentId });
    const oldVersion = reported?.adoptedManifestVersion ?? 0n;
    await pair.driver.updateDeployment(deploymentId, { greeting: "second greeting" });
    const web = await waitUntil(
      "a new web container with the new greeting",
      async () => {
        const cs = (await deploymentContainers(deploymentId)).filter((c) => c.state === "running");
        const w = cs.find((c) => c.component === "web");
        if (!w || w.id === byComponent(before, "web").id) return undefined;
        return (await containerEnv(w.id)).GREETING === "second greeting" ? w : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(web.id).not.toBe(byComponent(before, "web").id);
    const latest = await waitUntil("installed for the new revision", async () => {
      const [s] = await pair.driver.listStatuses({ deploymentId });
      return s?.state === "installed" && s.adoptedManifestVersion > oldVersion ? s : undefined;
    });
    expect(latest.components.map((c) => c.name)).toEqual(["store", "api", "web"]);
    // One container per service after the update: nothing left over from the old revision.
    expect((await deploymentContainers(deploymentId)).length).toBe(3);
  });

  it("components the change does not target keep their containers", async () => {
    await pair.waitReported(deploymentId, "installed");
    const now = await deploymentContainers(deploymentId);
    expect(byComponent(now, "store").id).toBe(byComponent(before, "store").id);
    expect(byComponent(now, "api").id).toBe(byComponent(before, "api").id);
  });

  it("undeploy: removing then removed reach the WFM and no container is left", async () => {
    await pair.driver.undeploy(deploymentId);
    await pair.waitReported(deploymentId, "removed", 45_000);
    expect(await deploymentContainers(deploymentId)).toEqual([]);
    const { states, repeats } = summarise(await pair.history(deploymentId));
    expect(states.slice(-2)).toEqual(["removing", "removed"]);
    expect(states.filter((s) => s !== "pending")).toEqual([
      "installing",
      "installed",
      "installing",
      "installed",
      "removing",
      "removed",
    ]);
    expect(repeats).toEqual([]);
  });
});
