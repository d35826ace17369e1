import { credentials, Metadata } from "@grpc/grpc-js";
import { admin, DeploymentState } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostingCapabilities, statusBody } from "./support/bodies.js";
import { registerFixtureApp } from "./support/fixture-apps.js";
import { MtlsClient, uriSan } from "./support/mtls-client.js";
import { startTestWfm, TEST_TRUST_DOMAIN, TEST_WFM_ID, tempDataDir } from "./support/start-wfm.js";
import { startWfmProcess, type WfmProcess } from "./support/wfm-process.js";

const WFM_ID = `spiffe://${TEST_TRUST_DOMAIN}/margo/wfm/${TEST_WFM_ID}`;

let dataDir: string;
let client: admin.ClientCredentials;
let operator: admin.ClientCredentials;
const children: WfmProcess[] = [];

/** The admin gRPC service of a child, as the operator (the CLI's path, minus the CLI). */
function adminOf(p: WfmProcess) {
  const c = new admin.WfmAdminServiceClient(
    `127.0.0.1:${p.grpcPort}`,
    credentials.createSsl(
      Buffer.from(operator.trustBundlePem),
      Buffer.from(operator.privateKeyPem),
      Buffer.from(operator.certificateChainPem),
      {
        checkServerIdentity: (_h, cert) =>
          uriSan(cert) === WFM_ID ? undefined : new Error("not the WFM"),
      },
    ),
    { "grpc.ssl_target_name_override": "localhost" },
  );
  const call =
    <Req, Res>(m: (r: Req, md: Metadata, cb: (e: Error | null, res: Res) => void) => unknown) =>
    (req: Req) =>
      new Promise<Res>((resolve, reject) =>
        m.call(c, req, new Metadata(), (e, res) => (e ? reject(e) : resolve(res))),
      );
  return {
    createDeployment: call<admin.CreateDeploymentRequest, admin.CreateDeploymentResponse>(
      c.createDeployment,
    ),
    deleteDeployment: call<admin.DeleteDeploymentRequest, admin.DeleteDeploymentResponse>(
      c.deleteDeployment,
    ),
    close: () => c.close(),
  };
}

function restOf(p: WfmProcess): MtlsClient {
  return new MtlsClient({
    port: p.managementPort,
    trustBundlePem: client.trustBundlePem,
    expectedServerId: WFM_ID,
    client,
  });
}

async function start(): Promise<WfmProcess> {
  const p = await startWfmProcess(dataDir);
  children.push(p);
  return p;
}

beforeAll(async () => {
  dataDir = await tempDataDir();
  const wfm = await startTestWfm({ dataDir });
  client = await wfm.admit("client-a");
  operator = await wfm.identity.mintOperator("tester");
  await registerFixtureApp(wfm.core, "compose-single");
  await wfm.dispose({ keepDataDir: true });
});
afterAll(async () => {
  for (const c of children) await c.kill9();
  const wfm = await startTestWfm({ dataDir });
  await wfm.dispose();
});

describe("durability across restarts of a separate process", () => {
  it("item 42: kill -9 right after acknowledged writes keeps manifestVersion, deployments, statuses and capabilities", async () => {
    // Round 1: writes through every edge, then SIGKILL the moment the last one is acknowledged.
    const p1 = await start();
    const rest1 = restOf(p1);
    const adm1 = adminOf(p1);
    expect(
      (await rest1.sendJson("PUT", "/api/v1/capabilities/dev-1", hostingCapabilities("dev-1")))
        .status,
    ).toBe(201);
    const created = await adm1.createDeployment({
      applicationId: "compose-single",
      clientId: "client-a",
      deviceId: "dev-1",
      parameters: {},
    });
    const deploymentId = created.deployment?.deploymentId ?? "";
    const m1 = await rest1.get("/api/v1/deployments");
    const v1 = (JSON.parse(m1.body.toString()) as { manifestVersion: number }).manifestVersion;
    expect(v1).toBeGreaterThan(1);
    const url = `/api/v1/deployments/${deploymentId}/status`;
    expect(
      (await rest1.sendJson("POST", url, statusBody(deploymentId, v1, "installing", ["hello"])))
        .status,
    ).toBe(201);
    rest1.close();
    adm1.close();
    await p1.kill9();

    // Round 2: everything is still there, byte for byte.
    const p2 = await start();
    const rest2 = restOf(p2);
    const m2 = await rest2.get("/api/v1/deployments");
    expect(m2.body.equals(m1.body)).toBe(true);
    expect(m2.headers.etag).toBe(m1.headers.etag);
    expect(
      (await rest2.get("/api/v1/deployments", { "if-none-match": String(m1.headers.etag) })).status,
    ).toBe(304);
    const ref = (JSON.parse(m2.body.toString()) as { deployments: Array<{ url: string }> })
      .deployments[0];
    expect((await rest2.get(ref?.url ?? "")).status).toBe(200);
    // 200 (not 201): the status and the device survived.
    expect(
      (await rest2.sendJson("POST", url, statusBody(deploymentId, v1, "installed", ["hello"])))
        .status,
    ).toBe(200);
    expect(
      (await rest2.sendJson("PUT", "/api/v1/capabilities/dev-1", hostingCapabilities("dev-1")))
        .status,
    ).toBe(200);
    const adm2 = adminOf(p2);
    await adm2.deleteDeployment({ deploymentId });
    const m3 = await rest2.get("/api/v1/deployments");
    const v3 = (JSON.parse(m3.body.toString()) as { manifestVersion: number }).manifestVersion;
    expect(v3).toBeGreaterThan(v1);
    rest2.close();
    adm2.close();
    await p2.kill9();

    // Round 3: the version never goes back after a crash; a graceful stop works too.
    const p3 = await start();
    const rest3 = restOf(p3);
    const m4 = await rest3.get("/api/v1/deployments");
    const parsed = JSON.parse(m4.body.toString()) as { manifestVersion: number; bundle: unknown };
    expect(parsed.manifestVersion).toBe(v3);
    expect(parsed.bundle).toBeNull();
    rest3.close();
    await p3.stop();
    expect(p3.child.exitCode).toBe(0);

    // And the latest accepted status and capabilities are the ones the store holds.
    const wfm = await startTestWfm({ dataDir });
    try {
      const [st] = await wfm.core.listStatuses({ clientId: "client-a", deploymentId });
      expect(st?.status?.status?.state).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLED);
      expect(await wfm.core.getDevice("client-a", "dev-1")).toBeDefined();
    } finally {
      await wfm.dispose({ keepDataDir: true });
    }
  });
});
