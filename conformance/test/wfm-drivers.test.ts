/**
 * The WFM suite's infrastructure against a real reference WFM child process: both drivers (gRPC
 * WfmDriverService and the shell driver through the example config's commands) do every
 * operation, the wire client talks mTLS to the Management Interface and keeps exact bytes, and
 * the suite opens (provisioning two clients through the configured command).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DeploymentState } from "@margo/proto";
import { readCredentials } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { WfmDriverConfig, WfmSuiteConfig } from "../src/config/types.js";
import type { CheckTools, Evidence } from "../src/core/types.js";
import { pushFixture } from "../src/suites/wfm/apps.js";
import { type WfmDriver, WfmDriverRefused } from "../src/suites/wfm/context.js";
import { EvidenceRecorder, openDriver } from "../src/suites/wfm/drivers/index.js";
import { loadAnchors } from "../src/suites/wfm/identity/anchors.js";
import { wfmSuite } from "../src/suites/wfm/suite.js";
import { createWireClient, WireTransportError } from "../src/suites/wfm/wire/wire-client.js";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MARGO_WFM = join(REPO, "reference-wfm/bin/margo-wfm");
const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const SPIFFE_ID = "spiffe://example.org/margo/wfm/wfm-1";

interface RefWfm {
  dataDir: string;
  url: string;
  grpc: string;
  child: ChildProcess;
}

/** `margo-wfm init` (ports 0) + `serve --json`, resolved once it printed its listening line. */
async function startReferenceWfm(): Promise<RefWfm> {
  const dataDir = await mkdtemp(join(tmpdir(), "margo-conf-wfm-"));
  await run(
    MARGO_WFM,
    [
      ...["init", "--data-dir", dataDir, "--trust-domain", "example.org", "--wfm-id", "wfm-1"],
      ...["--management-port", "0", "--trust-port", "0", "--grpc-port", "0", "--host", "127.0.0.1"],
    ],
    { timeout: 120_000 },
  );
  const child = spawn(MARGO_WFM, ["serve", "--json", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const ports = await new Promise<{ management: number; grpc: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not listen: ${err}`)), 60_000);
    child.once("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      for (const line of out.split("\n")) {
        if (!line.includes('"listening"')) continue;
        clearTimeout(timer);
        const ev = JSON.parse(line) as { management: { port: number }; grpc: { port: number } };
        resolve({ management: ev.management.port, grpc: ev.grpc.port });
      }
    });
  });
  return {
    dataDir,
    url: `https://127.0.0.1:${ports.management}`,
    grpc: `127.0.0.1:${ports.grpc}`,
    child,
  };
}

/** Just enough CheckTools for infrastructure calls: collects evidence, fails loudly. */
function fakeTools(): CheckTools & { seen: Evidence[] } {
  const seen: Evidence[] = [];
  const fail = (m: string): never => {
    throw new Error(m);
  };
  return {
    seen,
    signal: new AbortController().signal,
    evidence: (e) => seen.push(e),
    note: () => {},
    fail,
    skip: fail,
    expect(cond, m) {
      if (!cond) fail(m);
    },
    expectEqual(a, b, what) {
      if (JSON.stringify(a) !== JSON.stringify(b)) fail(what);
    },
  };
}

let wfm: RefWfm;
let clientDir: string;

function grpcConfig(): WfmDriverConfig {
  return {
    kind: "grpc",
    address: wfm.grpc,
    certFile: join(wfm.dataDir, "operator/svid.pem"),
    keyFile: join(wfm.dataDir, "operator/svid.key"),
    caFile: join(wfm.dataDir, "operator/bundle.pem"),
  };
}

async function shellConfig(): Promise<WfmDriverConfig> {
  const example = parseYaml(
    await readFile(join(REPO, "conformance/examples/reference-wfm-shell-driver.yaml"), "utf8"),
  ) as { wfm: { driver: Extract<WfmDriverConfig, { kind: "shell" }> } };
  // The example's commands as written; only where the data dir is and the cwd differ.
  return {
    ...example.wfm.driver,
    cwd: REPO,
    env: { MARGO_WFM_DATA_DIR: wfm.dataDir },
  };
}

beforeAll(async () => {
  wfm = await startReferenceWfm();
  clientDir = join(wfm.dataDir, "conf-client");
  await run(MARGO_WFM, [
    "client",
    "add",
    "edge-drv",
    "--out",
    clientDir,
    "--data-dir",
    wfm.dataDir,
  ]);
}, 180_000);

afterAll(async () => {
  wfm?.child.kill("SIGTERM");
  if (wfm) await rm(wfm.dataDir, { recursive: true, force: true });
});

/** The same walk through every driver operation, judged on the WFM's wire where it shows. */
async function exerciseDriver(driver: WfmDriver, recorded: Evidence[]): Promise<void> {
  const t = fakeTools();
  const creds = await readCredentials(clientDir);
  const wire = createWireClient({
    baseUrl: wfm.url,
    credentials: { chainPem: creds.chainPem, keyPem: creds.keyPem },
    actor: "client edge-drv",
    anchors: await loadAnchors(join(wfm.dataDir, "operator/bundle.pem")),
    wfmSpiffeId: SPIFFE_ID,
    trustDomain: "example.org",
  });
  try {
    const info = await driver.info();
    expect(info.margoVersion).toBe("1.0.0-rc.3");
    await driver.reset();

    const ref = await pushFixture("compose-single", REGISTRY, true);
    expect(ref).toMatch(new RegExp(`^${REGISTRY}/margo-conformance/`));
    const app = await driver.publish(ref, true);
    expect(app.applicationId).toBeTruthy();

    const deviceId = `dev-drv-${Math.random().toString(16).slice(2, 8)}`;
    const caps = {
      properties: {
        id: deviceId,
        vendor: "conformance",
        modelNumber: "m1",
        serialNumber: "s1",
        cpus: [{ cores: 2, architecture: "amd64" }],
        memory: "2Gi",
        storage: "16Gi",
        peripherals: [],
        interfaces: [],
        otelCollector: true,
        supportedRuntimes: ["oci"],
        supportedDeploymentTypes: ["compose"],
      },
    };
    const put = await wire.request(t, {
      method: "PUT",
      path: `/api/v1/capabilities/${deviceId}`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(caps),
    });
    expect(put.status).toBe(201);
    const found = await driver.capabilities("edge-drv", deviceId);
    expect(found.found).toBe(true);
    expect(found.capabilities?.properties?.id).toBe(deviceId);
    expect((await driver.capabilities("edge-drv", "no-such-device")).found).toBe(false);

    const { deploymentId } = await driver.deploy({
      applicationId: app.applicationId,
      clientId: "edge-drv",
      deviceId,
      profileType: "compose",
    });
    const manifest = await wire.request(t, { method: "GET", path: "/api/v1/deployments" });
    expect(manifest.status).toBe(200);
    expect(manifest.tls.protocol).toBe("TLSv1.3");
    expect(manifest.tls.peerChainDer.length).toBeGreaterThan(0);
    const text = manifest.body.toString("utf8");
    expect(text).toContain(deploymentId);
    const version = /"manifestVersion"\s*:\s*(\d+)/.exec(text)?.[1] ?? "0";

    const posted = await wire.request(t, {
      method: "POST",
      path: `/api/v1/deployments/${deploymentId}/status`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        deploymentId,
        deviceId,
        adoptedManifestVersion: Number(version),
        status: { state: "installing" },
        components: [{ name: "hello", state: "installing" }],
      }),
    });
    expect(posted.status, posted.body.toString()).toBe(201);
    const statuses = await driver.statuses({ clientId: "edge-drv", deploymentId });
    expect(statuses).toHaveLength(1);
    expect(statuses[0]?.status.status?.state).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLING);

    await driver.undeploy(deploymentId);
    await expect(driver.undeploy(deploymentId)).rejects.toBeInstanceOf(WfmDriverRefused);
    await driver.reset();
    // Every wire exchange became evidence; so did the driver calls.
    expect(t.seen.filter((e) => e.kind === "http")).toHaveLength(3);
    expect(recorded.length).toBeGreaterThanOrEqual(9);
  } finally {
    wire.close();
  }
}

describe("WFM drivers against the reference WFM", () => {
  it("gRPC driver: info, reset, publish, deploy, capabilities, statuses, undeploy", async () => {
    const recorded: Evidence[] = [];
    const rec = new EvidenceRecorder();
    rec.bind((e) => recorded.push(e));
    const { driver, close } = await openDriver(grpcConfig(), SPIFFE_ID, rec);
    try {
      await exerciseDriver(driver, recorded);
      expect(recorded.every((e) => e.kind === "grpc")).toBe(true);
    } finally {
      close();
    }
  }, 120_000);

  it("gRPC driver refuses a server presenting another SPIFFE ID", async () => {
    const { driver, close } = await openDriver(
      grpcConfig(),
      "spiffe://example.org/margo/wfm/someone-else",
      new EvidenceRecorder(),
    );
    try {
      const err = await driver.info().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(WfmDriverRefused);
    } finally {
      close();
    }
  }, 60_000);

  it("shell driver through the example's commands does the same", async () => {
    const recorded: Evidence[] = [];
    const rec = new EvidenceRecorder();
    rec.bind((e) => recorded.push(e));
    const { driver } = await openDriver(await shellConfig(), SPIFFE_ID, rec);
    await exerciseDriver(driver, recorded);
    expect(recorded.every((e) => e.kind === "command")).toBe(true);
  }, 240_000);

  it("wire client: no client certificate is refused as data, a wrong WFM SPIFFE ID is refused", async () => {
    const t = fakeTools();
    const anchors = await loadAnchors(join(wfm.dataDir, "operator/bundle.pem"));
    const anon = createWireClient({
      baseUrl: wfm.url,
      credentials: null,
      actor: "no client certificate",
      anchors,
      wfmSpiffeId: SPIFFE_ID,
      trustDomain: "example.org",
    });
    const res = await anon
      .request(t, { method: "GET", path: "/api/v1/deployments" })
      .catch((e: unknown) => e);
    if (res instanceof WireTransportError) expect(["handshake", "request"]).toContain(res.stage);
    else expect((res as { status: number }).status).toBeGreaterThanOrEqual(400);
    const creds = await readCredentials(clientDir);
    const wrong = createWireClient({
      baseUrl: wfm.url,
      credentials: { chainPem: creds.chainPem, keyPem: creds.keyPem },
      actor: "client edge-drv",
      anchors,
      wfmSpiffeId: "spiffe://example.org/margo/wfm/impostor",
      trustDomain: "example.org",
    });
    const e2 = await wrong
      .request(t, { method: "GET", path: "/api/v1/deployments" })
      .catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(WireTransportError);
    expect((e2 as WireTransportError).stage).toBe("handshake");
    expect(t.seen.some((e) => e.kind === "http" && e.transportError)).toBe(true);
    anon.close();
    wrong.close();
  }, 60_000);

  it("suite opens: provisions two clients by command, publishes the fixture apps", async () => {
    const config: WfmSuiteConfig = {
      url: wfm.url,
      spiffeId: SPIFFE_ID,
      trustBundleFile: join(wfm.dataDir, "operator/bundle.pem"),
      clients: {
        provisionCommand: `${MARGO_WFM} client add {clientId} --out {dir} --data-dir ${wfm.dataDir}`,
      },
      driver: grpcConfig(),
    };
    const workDir = await mkdtemp(join(tmpdir(), "margo-conf-suite-"));
    const session = await wfmSuite.open(config, {
      workDir,
      log: () => {},
      signal: new AbortController().signal,
    });
    try {
      const ctx = session.ctx;
      expect(ctx.clients[0].clientId).toMatch(/^conf-[0-9a-f]{8}-a$/);
      expect(ctx.clients[1].clientId).toMatch(/^conf-[0-9a-f]{8}-b$/);
      expect(ctx.trustDomain).toBe("example.org");
      expect(ctx.wfmId).toBe("wfm-1");
      const t = fakeTools();
      const res = await ctx.clients[1].wire.request(t, {
        method: "GET",
        path: "/api/v1/deployments",
      });
      expect(res.status).toBe(200);
      const apps = await ctx.apps(t);
      expect(apps.single.applicationId).not.toBe(apps.multi.applicationId);
      // A foreign SVID is refused on the wire.
      const foreign = await ctx.foreignMinter.clientSvid(
        "spiffe://example.org/margo/wfm/wfm-1/client/intruder",
      );
      const out = await ctx
        .connect(foreign, "foreign")
        .request(t, { method: "GET", path: "/api/v1/deployments" })
        .catch((e: unknown) => e);
      if (!(out instanceof WireTransportError))
        expect((out as { status: number }).status).toBeGreaterThanOrEqual(400);
    } finally {
      await session.close();
      await rm(workDir, { recursive: true, force: true });
    }
  }, 120_000);
});
