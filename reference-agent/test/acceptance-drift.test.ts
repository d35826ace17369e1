import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deploymentContainers,
  killContainer,
  removeContainer,
  waitRunning,
} from "./support/docker.js";
import { type Pair, startPair } from "./support/pair.js";

/**
 * Acceptance 3: drift. An operator kills or removes a workload container by hand; the agent sees
 * it through the Docker API (not the WFM, which changed nothing) and brings it back.
 */

const CLIENT = "acc-drift";
const DEVICE = "acc-drift-dev";

let pair: Pair;
let deploymentId: string;

beforeAll(async () => {
  pair = await startPair({
    clientId: CLIENT,
    deviceId: DEVICE,
    fixtures: ["compose-single"],
    agent: { watch: true, driftCheckMs: 500 },
  });
  deploymentId = await pair.driver.deploy(CLIENT, DEVICE, pair.apps["compose-single"] as string);
  await waitRunning(deploymentId, 1);
  await pair.waitReported(deploymentId, "installed");
}, 120_000);

afterAll(async () => {
  await pair?.dispose();
}, 60_000);

describe("acceptance: drift repair on the real Docker Engine", () => {
  it("docker kill: the workload runs again", async () => {
    const [c] = await waitRunning(deploymentId, 1);
    await killContainer(c?.id as string);
    const [back] = await waitRunning(deploymentId, 1, 20_000);
    expect(back?.state).toBe("running");
    await pair.waitReported(deploymentId, "installed");
  });

  it("docker rm -f: a new container is created and runs", async () => {
    const [c] = await waitRunning(deploymentId, 1);
    await removeContainer(c?.id as string);
    expect((await deploymentContainers(deploymentId)).some((x) => x.id === c?.id)).toBe(false);
    const [back] = await waitRunning(deploymentId, 1, 20_000);
    expect(back?.id).not.toBe(c?.id);
    await pair.waitReported(deploymentId, "installed");
  });
});
