import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { deviceDriver } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { waitUntil } from "./support/docker.js";
import { type Pair, startPair } from "./support/pair.js";

/**
 * The DeviceDriver service on a real `margo-agent run` (child process) against a real reference
 * WFM: the suite's token from the state dir, Info and GetState from the live agent, Configure
 * re-provisioning it as another client of the same WFM, and a graceful stop.
 */

const CLIENT = "drv-a";
const DEVICE = "drv-a-dev";

let pair: Pair;
let dd: deviceDriver.DeviceDriverServiceClient;
let token: string;
let secondId: string;

function call<Res>(method: "configure" | "reset" | "getState" | "info", req: object): Promise<Res> {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    // biome-ignore lint/suspicious/noExplicitAny: one helper for the four generated methods
    (dd[method] as any).call(dd, req, md, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

beforeAll(async () => {
  pair = await startPair({ clientId: CLIENT, deviceId: DEVICE, fixtures: [], agent: false });
  const agent = await pair.startAgent({
    configure: (c) => {
      c.driver = { host: "127.0.0.1", port: 0 };
    },
  });
  const port = agent.started.driverPort;
  if (typeof port !== "number" || port <= 0) {
    throw new Error(`run announced no driver port: ${JSON.stringify(agent.started)}`);
  }
  token = (await readFile(join(agent.config.stateDir, "driver.token"), "utf8")).trim();
  dd = new deviceDriver.DeviceDriverServiceClient(
    `127.0.0.1:${port}`,
    credentials.createInsecure(),
  );
  secondId = await mkdtemp(join(tmpdir(), "margo-agent-id-drv-b-"));
}, 120_000);

afterAll(async () => {
  dd?.close();
  await pair?.dispose();
  if (secondId) await rm(secondId, { recursive: true, force: true });
}, 60_000);

describe("DeviceDriver on margo-agent run", () => {
  it("Info and GetState come from the live agent; status --json shows the driver port", async () => {
    const info = await call<deviceDriver.InfoResponse>("info", {});
    expect(info.margoVersion).toBe("1.0.0-rc.3");
    expect(info.supportedRuntimes).toEqual(["oci"]);
    await waitUntil(
      "a manifest accepted",
      async () => (await call<deviceDriver.GetStateResponse>("getState", {})).manifestVersion,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const after = await call<deviceDriver.InfoResponse>("info", {});
    expect(after.supportedDeploymentTypes).toContain("compose");
    const s = await pair.agent().status();
    expect(s.running).toBe(true);
    expect(s.driverPort).toBe(pair.agent().started.driverPort);
  });

  it("item 8: Configure with an expected WFM id the SVID does not name is FAILED_PRECONDITION; the agent carries on", async () => {
    await pair.wfm.addClient("drv-b", secondId);
    const req = await configureFrom(
      secondId,
      "drv-b-dev",
      "spiffe://example.org/margo/wfm/not-this-one",
    );
    const err = await call("configure", req).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(err?.code).toBe(status.FAILED_PRECONDITION);
    expect(err?.details).toContain(pair.wfm.wfmSpiffeId);
    expect(err?.details).toContain("not-this-one");
    const cfg = await loadConfig(pair.agent().configFile);
    expect(cfg.deviceId).toBe(DEVICE);
  });

  it("Configure re-provisions the running agent as another client: it reports capabilities there", async () => {
    const req = await configureFrom(secondId, "drv-b-dev", pair.wfm.wfmSpiffeId);
    await call("configure", req);
    const cfg = await loadConfig(pair.agent().configFile);
    expect(cfg.deviceId).toBe("drv-b-dev");
    expect(cfg.polling.periodMs).toBe(300);
    const caps = await waitUntil(
      "capabilities of the re-provisioned device",
      async () => {
        const c = await pair.driver.capabilities("drv-b", "drv-b-dev");
        return c.found ? c : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(caps.capabilities?.properties?.id).toBe("drv-b-dev");
    await call("reset", {});
    const s = await call<deviceDriver.GetStateResponse>("getState", {});
    expect(s.deployments).toEqual([]);
  });

  it("SIGTERM stops it gracefully: the run file is removed", async () => {
    const runFile = join(pair.agent().config.stateDir, "run.json");
    expect(existsSync(runFile)).toBe(true);
    await pair.agent().stop();
    expect(existsSync(runFile)).toBe(false);
    expect(pair.agent().stderr()).toContain("stopping on SIGTERM");
  });
});

async function configureFrom(
  dir: string,
  deviceId: string,
  expectedWfm: string,
): Promise<deviceDriver.ConfigureRequest> {
  return {
    wfmUrl: pair.wfm.managementUrl,
    clientSvidChainPem: await readFile(join(dir, "svid.pem"), "utf8"),
    privateKeyPem: await readFile(join(dir, "svid.key"), "utf8"),
    trustBundle: {
      $case: "spiffeBundleJson",
      value: await readFile(join(dir, "bundle.json"), "utf8"),
    },
    expectedWfmSpiffeId: expectedWfm,
    pollPeriodMs: 300,
    deviceId,
  };
}
