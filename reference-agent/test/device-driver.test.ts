import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { DeploymentState, deviceDriver } from "@margo/proto";
import { createRootCa, encodeAnchorsBundle, mintSvid } from "@margo/proto/identity";
import { afterAll, describe, expect, it } from "vitest";
import type { AgentView, RunningAgent, StartAgent } from "../src/agent-api.js";
import { type AgentConfig, defaultConfig, loadConfig } from "../src/config.js";
import {
  type DeviceDriverServer,
  DriverConfigError,
  startDeviceDriverServer,
} from "../src/driver/device-driver-server.js";
import {
  AgentSupervisor,
  type DeviceDriverBackend,
  MARGO_VERSION,
  SupervisorError,
  stateResponse,
} from "../src/driver/supervisor.js";
import { silentLog } from "../src/log.js";
import { SqliteAgentStore } from "../src/state/sqlite-store.js";

const dirs: string[] = [];
const servers: DeviceDriverServer[] = [];
const clients: deviceDriver.DeviceDriverServiceClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const VIEW: AgentView = {
  deviceId: "edge-1",
  clientSpiffeId: "spiffe://example.org/margo/wfm/w1/client/c1",
  expectedWfmId: "spiffe://example.org/margo/wfm/w1",
  manifestVersion: 18446744073709551615n,
  etag: '"sha256:abc"',
  deployments: [
    {
      deploymentId: "d-1",
      digest: "sha256:1111",
      deploymentName: "hello",
      desired: "present",
      state: "failed",
      adoptedManifestVersion: 7n,
      components: [
        { name: "web", state: "installed" },
        { name: "db", state: "failed", error: { code: "PULL_FAILED", message: "no such tag" } },
      ],
      error: { code: "PULL_FAILED", source: "db", message: "no such tag" },
    },
  ],
  outbox: { pending: 0, delivered: 3, deadLettered: 0 },
  lastErrors: [
    { at: 1_700_000_000_000, kind: "digest-mismatch", message: "bundle digest differs" },
  ],
  trust: { anchors: 1 },
  runtimes: [
    { type: "compose", available: true, version: "docker 20.10" },
    { type: "helm", available: false, reason: "no helm" },
  ],
  watching: false,
};

/** A backend that records calls and answers from VIEW. */
function stubBackend() {
  const calls: string[] = [];
  const backend: DeviceDriverBackend = {
    async configure(req) {
      calls.push(`configure ${req.deviceId}`);
      if (req.deviceId === "bad") throw new SupervisorError("invalid-argument", "device_id bad");
      if (req.deviceId === "other-wfm") {
        throw new SupervisorError(
          "failed-precondition",
          "the SVID names WFM a, the request expects b",
        );
      }
    },
    async reset() {
      calls.push("reset");
    },
    state: () => stateResponse(VIEW),
    info: () => ({
      vendor: "v",
      product: "p",
      version: "1",
      margoVersion: MARGO_VERSION,
      supportedDeploymentTypes: ["compose"],
      supportedRuntimes: ["oci"],
    }),
  };
  return { backend, calls };
}

/** A complete request (the client refuses to serialise one with unset scalars). */
const configureReq = (deviceId: string): deviceDriver.ConfigureRequest => ({
  ...deviceDriver.ConfigureRequest.fromPartial({}),
  deviceId,
});

function client(port: number): deviceDriver.DeviceDriverServiceClient {
  const c = new deviceDriver.DeviceDriverServiceClient(
    `127.0.0.1:${port}`,
    credentials.createInsecure(),
  );
  clients.push(c);
  return c;
}

function invoke<Req, Res>(
  c: deviceDriver.DeviceDriverServiceClient,
  method: "configure" | "reset" | "getState" | "info",
  req: Req,
  token?: string,
): Promise<Res> {
  const md = new Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    // biome-ignore lint/suspicious/noExplicitAny: one helper for the four generated methods
    (c[method] as any).call(c, req, md, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

async function refused(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  const e = await p.then(
    () => {
      throw new Error("call unexpectedly succeeded");
    },
    (err: ServiceError) => err,
  );
  return { code: e.code, details: e.details };
}

describe("DeviceDriver gRPC server", () => {
  it("refuses calls without the bearer token, accepts it, maps errors to gRPC status", async () => {
    const stateDir = tempDir("margo-driver-");
    const { backend, calls } = stubBackend();
    const server = await startDeviceDriverServer(backend, {
      host: "127.0.0.1",
      port: 0,
      stateDir,
      log: silentLog,
    });
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    expect(server.tokenFile).toBe(join(stateDir, "driver.token"));
    expect(statSync(server.tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(server.tokenFile, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);

    const c = client(server.port);
    expect((await refused(invoke(c, "getState", {}))).code).toBe(status.UNAUTHENTICATED);
    expect((await refused(invoke(c, "reset", {}, `${token}x`))).code).toBe(status.UNAUTHENTICATED);
    expect(calls).toEqual([]);

    await invoke(c, "reset", {}, token);
    expect(calls).toEqual(["reset"]);
    const info = await invoke<object, deviceDriver.InfoResponse>(c, "info", {}, token);
    expect(info.margoVersion).toBe("1.0.0-rc.3");

    const bad = await refused(invoke(c, "configure", configureReq("bad"), token));
    expect(bad).toEqual({ code: status.INVALID_ARGUMENT, details: "device_id bad" });
    const mismatch = await refused(invoke(c, "configure", configureReq("other-wfm"), token));
    expect(mismatch.code).toBe(status.FAILED_PRECONDITION);
    expect(mismatch.details).toContain("expects b");
  });

  it("GetState carries the view: 64-bit version, ETag, each deployment as its status, errors with time", async () => {
    const stateDir = tempDir("margo-driver-");
    const server = await startDeviceDriverServer(stubBackend().backend, {
      host: "127.0.0.1",
      port: 0,
      stateDir,
      log: silentLog,
    });
    servers.push(server);
    const token = readFileSync(server.tokenFile, "utf8").trim();
    const s = await invoke<object, deviceDriver.GetStateResponse>(
      client(server.port),
      "getState",
      {},
      token,
    );
    expect(s.manifestVersion).toBe(18446744073709551615n);
    expect(s.etag).toBe('"sha256:abc"');
    expect(s.deployments).toHaveLength(1);
    const d = s.deployments[0];
    expect(d?.digest).toBe("sha256:1111");
    expect(d?.status?.deploymentId).toBe("d-1");
    expect(d?.status?.adoptedManifestVersion).toBe(7n);
    expect(d?.status?.status?.state).toBe(DeploymentState.DEPLOYMENT_STATE_FAILED);
    expect(d?.status?.status?.error).toEqual({
      code: "PULL_FAILED",
      source: "db",
      message: "no such tag",
    });
    expect(d?.status?.components.map((x) => [x.name, x.state])).toEqual([
      ["web", DeploymentState.DEPLOYMENT_STATE_INSTALLED],
      ["db", DeploymentState.DEPLOYMENT_STATE_FAILED],
    ]);
    expect(d?.status?.components[1]?.error).toEqual({
      code: "PULL_FAILED",
      source: "db",
      message: "no such tag",
    });
    expect(s.lastErrors).toEqual([
      {
        at: new Date(1_700_000_000_000),
        kind: "digest-mismatch",
        message: "bundle digest differs",
      },
    ]);
  });

  it("keeps an existing token file and refuses a non-loopback host without an operator token", async () => {
    const stateDir = tempDir("margo-driver-");
    writeFileSync(join(stateDir, "driver.token"), "operator-chosen-token-0123456789\n", {
      mode: 0o600,
    });
    const server = await startDeviceDriverServer(stubBackend().backend, {
      host: "127.0.0.1",
      port: 0,
      stateDir,
      log: silentLog,
    });
    servers.push(server);
    await invoke(client(server.port), "reset", {}, "operator-chosen-token-0123456789");
    await expect(
      startDeviceDriverServer(stubBackend().backend, {
        host: "0.0.0.0",
        port: 0,
        stateDir,
        log: silentLog,
      }),
    ).rejects.toBeInstanceOf(DriverConfigError);
  });
});

/** Identity material as a WFM would provision it: root, client SVID for wfm `w1`. */
async function provisioning(wfmId: string) {
  const root = await createRootCa({ trustDomain: "example.org", lifetimeSeconds: 3600 });
  const svid = await mintSvid({
    issuer: { certDer: root.certDer, privateKey: root.keys.privateKey },
    spiffeId: `spiffe://example.org/margo/wfm/${wfmId}/client/c1`,
    lifetimeSeconds: 3600,
  });
  return {
    root,
    request: (
      over: Partial<deviceDriver.ConfigureRequest> = {},
    ): deviceDriver.ConfigureRequest => ({
      wfmUrl: "https://127.0.0.1:9443",
      clientSvidChainPem: svid.certPem,
      privateKeyPem: svid.keyPem,
      trustBundle: { $case: "trustBundlePem", value: root.certPem },
      expectedWfmSpiffeId: `spiffe://example.org/margo/wfm/${wfmId}`,
      pollPeriodMs: 250,
      deviceId: "edge-9",
      ...over,
    }),
  };
}

/** A StartAgent that records what it was started with and what happened to each agent. */
function fakeStart() {
  const events: string[] = [];
  const configs: AgentConfig[] = [];
  const start: StartAgent = async (config) => {
    const n = configs.push(config);
    events.push(`start#${n} ${config.deviceId}`);
    const agent: RunningAgent = {
      config,
      view: () => ({ ...VIEW, deviceId: config.deviceId }),
      syncNow: () => {},
      reset: async () => {
        events.push(`reset#${n}`);
      },
      close: async () => {
        events.push(`close#${n}`);
      },
    };
    return agent;
  };
  return { start, events, configs };
}

describe("AgentSupervisor.configure", () => {
  it("installs the identity (key 0600), saves the config, resets the store and restarts the agent", async () => {
    const stateDir = tempDir("margo-sup-state-");
    const identityDir = tempDir("margo-sup-id-");
    const config = defaultConfig(stateDir, {
      deviceId: "edge-1",
      wfmUrl: "https://127.0.0.1:1",
      identityDir,
    });
    writeFileSync(join(identityDir, "bundle.json"), "{}");
    // Something from the old relationship the reset must drop.
    const store = SqliteAgentStore.open(stateDir);
    store.recordError("old-wfm", "from the previous WFM");
    store.close();

    const f = fakeStart();
    const sup = new AgentSupervisor(config, f.start, silentLog);
    await sup.start();
    const p = await provisioning("w1");
    await sup.configure(p.request());

    expect(f.events).toEqual(["start#1 edge-1", "reset#1", "close#1", "start#2 edge-9"]);
    expect(readFileSync(join(identityDir, "svid.key"), "utf8")).toBe(p.request().privateKeyPem);
    expect(statSync(join(identityDir, "svid.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(identityDir, "bundle.pem"), "utf8")).toBe(p.root.certPem);
    expect(existsSync(join(identityDir, "bundle.json"))).toBe(false);
    const saved = await loadConfig(join(stateDir, "agent.json"));
    expect(saved.deviceId).toBe("edge-9");
    expect(saved.wfm.url).toBe("https://127.0.0.1:9443");
    expect(saved.polling.periodMs).toBe(250);
    expect(f.configs[1]).toEqual(saved);
    const after = SqliteAgentStore.open(stateDir);
    expect(after.recentErrors(10)).toEqual([]);
    after.close();
    expect(sup.state().deployments).toHaveLength(1);
    expect(sup.info().supportedDeploymentTypes).toEqual(["compose"]);

    // The SPIFFE bundle form replaces the PEM one.
    const json = Buffer.from(encodeAnchorsBundle([p.root.certDer], { sequence: 1n })).toString(
      "utf8",
    );
    await sup.configure(p.request({ trustBundle: { $case: "spiffeBundleJson", value: json } }));
    expect(existsSync(join(identityDir, "bundle.pem"))).toBe(false);
    expect(readFileSync(join(identityDir, "bundle.json"), "utf8")).toBe(json);
    await sup.close();
  });

  it("item 8: an SVID naming another WFM is FAILED_PRECONDITION naming both, and nothing is torn down", async () => {
    const stateDir = tempDir("margo-sup-state-");
    const identityDir = tempDir("margo-sup-id-");
    const config = defaultConfig(stateDir, {
      deviceId: "edge-1",
      wfmUrl: "https://127.0.0.1:1",
      identityDir,
    });
    const f = fakeStart();
    const sup = new AgentSupervisor(config, f.start, silentLog);
    await sup.start();
    const p = await provisioning("w1");
    const err = await sup
      .configure(p.request({ expectedWfmSpiffeId: "spiffe://example.org/margo/wfm/w2" }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(SupervisorError);
    expect((err as SupervisorError).code).toBe("failed-precondition");
    expect((err as Error).message).toContain("spiffe://example.org/margo/wfm/w1");
    expect((err as Error).message).toContain("spiffe://example.org/margo/wfm/w2");
    expect(f.events).toEqual(["start#1 edge-1"]);
    expect(existsSync(join(identityDir, "svid.pem"))).toBe(false);

    for (const bad of [
      p.request({ trustBundle: undefined }),
      p.request({ wfmUrl: "http://127.0.0.1:1" }),
      p.request({ clientSvidChainPem: "" }),
      p.request({ deviceId: "a b" }),
    ]) {
      const e = await sup.configure(bad).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect((e as SupervisorError).code).toBe("invalid-argument");
    }
    expect(f.events).toEqual(["start#1 edge-1"]);

    // Workloads that cannot be removed: UNAVAILABLE, and the old agent keeps running.
    const stuck = fakeStart();
    const sup2 = new AgentSupervisor(
      config,
      async (c, o) => {
        const a = await stuck.start(c, o);
        return {
          ...a,
          reset: async () => {
            throw new Error("docker is down");
          },
        };
      },
      silentLog,
    );
    await sup2.start();
    const down = await sup2.configure(p.request()).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect((down as SupervisorError).code).toBe("unavailable");
    expect((down as Error).message).toContain("docker is down");
    expect(stuck.events).toEqual(["start#1 edge-1"]);
    expect(sup2.current()?.config.deviceId).toBe("edge-1");
    expect(existsSync(join(identityDir, "svid.pem"))).toBe(false);
    await sup2.close();
    await sup.close();
  });
});
