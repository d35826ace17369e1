import { type ChannelCredentials, type Client, credentials } from "@grpc/grpc-js";
import { type admin, api, DeploymentState, wfmDriver } from "@margo/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkWfmIdentity } from "../src/cli/admin-client.js";
import { call, TEST_CHANNEL_OPTIONS } from "./grpc-support.js";
import { hostingCapabilities, statusBody } from "./support/bodies.js";
import { publishFixtureApp } from "./support/fixture-apps.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

/**
 * Status history (WfmDriver ListReportedStatuses include_history): the agent's acceptance tests
 * must prove that no status report was lost, duplicated or reordered, which the latest-per-
 * deployment view cannot show. Runs on the whole composed WFM (SQLite store, real mTLS).
 */

let wfm: TestWfm;
let target: string;
let operator: admin.ClientCredentials;
const open: Client[] = [];

function channel(creds: admin.ClientCredentials): ChannelCredentials {
  const expected = wfm.identity.wfmSpiffeId;
  return credentials.createSsl(
    Buffer.from(creds.trustBundlePem),
    Buffer.from(creds.privateKeyPem),
    Buffer.from(creds.certificateChainPem),
    { checkServerIdentity: (_host, cert) => checkWfmIdentity(cert, expected) },
  );
}
function wm(creds: admin.ClientCredentials): api.WorkloadManagementServiceClient {
  const c = new api.WorkloadManagementServiceClient(target, channel(creds), TEST_CHANNEL_OPTIONS);
  open.push(c);
  return c;
}
function driver(creds: admin.ClientCredentials): wfmDriver.WfmDriverServiceClient {
  const c = new wfmDriver.WfmDriverServiceClient(target, channel(creds), TEST_CHANNEL_OPTIONS);
  open.push(c);
  return c;
}

/** "installed" for DEPLOYMENT_STATE_INSTALLED: the wire form the reports were sent in. */
function stateName(state: DeploymentState | undefined): string | undefined {
  return state === undefined
    ? undefined
    : DeploymentState[state]?.replace("DEPLOYMENT_STATE_", "").toLowerCase();
}

beforeAll(async () => {
  wfm = await startTestWfm({ grpc: true });
  if (wfm.grpcPort === undefined) throw new Error("startTestWfm did not start gRPC");
  target = `127.0.0.1:${wfm.grpcPort}`;
  operator = await wfm.identity.mintOperator("alice");
});
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
afterAll(async () => {
  await wfm?.dispose();
});

describe("ListReportedStatuses include_history", () => {
  it("items 65-67: every accepted report in receipt order, latest-only view unchanged, reset clears both", async () => {
    const d = driver(operator);
    const ref = await publishFixtureApp("compose-single");
    const app = await call(d, d.publishApplication, { ociReference: ref, plainHttp: true });
    const creds = await wfm.admit("hist-a");
    const dev = wm(creds);
    await call(dev, dev.putCapabilities, {
      deviceId: "edge-1",
      body: Buffer.from(JSON.stringify(hostingCapabilities("edge-1"))),
    });
    const a = await call(d, d.deploy, {
      applicationId: app.applicationId,
      clientId: "hist-a",
      deviceId: "edge-1",
      parameters: {},
    });
    const b = await call(d, d.deploy, {
      applicationId: app.applicationId,
      clientId: "hist-a",
      deviceId: "edge-1",
      parameters: {},
    });
    const v = (await call(dev, dev.getManifest, {})).manifest?.manifestVersion ?? 0n;

    // Interleaved, with a repeated state: history must keep both "installing" reports of A.
    const sent: Array<[string, string]> = [
      [a.deploymentId, "pending"],
      [a.deploymentId, "installing"],
      [b.deploymentId, "installing"],
      [a.deploymentId, "installing"],
      [b.deploymentId, "installed"],
      [a.deploymentId, "installed"],
    ];
    for (const [id, state] of sent) {
      await call(dev, dev.reportStatus, {
        deploymentId: id,
        body: Buffer.from(statusBody(id, v, state, ["hello"])),
      });
    }

    const history = await call(d, d.listReportedStatuses, {
      clientId: "hist-a",
      includeHistory: true,
    });
    expect(
      history.statuses.map((s) => [s.status?.deploymentId, stateName(s.status?.status?.state)]),
    ).toEqual(sent);
    const times = history.statuses.map((s) => s.receivedAt?.getTime() ?? 0);
    expect(times).toEqual([...times].sort((x, y) => x - y));

    const onlyA = await call(d, d.listReportedStatuses, {
      deploymentId: a.deploymentId,
      includeHistory: true,
    });
    expect(onlyA.statuses.map((s) => stateName(s.status?.status?.state))).toEqual([
      "pending",
      "installing",
      "installing",
      "installed",
    ]);

    const latest = await call(d, d.listReportedStatuses, { clientId: "hist-a" });
    expect(latest.statuses).toHaveLength(2);
    const latestById = new Map(
      latest.statuses.map((s) => [s.status?.deploymentId, stateName(s.status?.status?.state)]),
    );
    expect(latestById.get(a.deploymentId)).toBe("installed");
    expect(latestById.get(b.deploymentId)).toBe("installed");

    await call(d, d.reset, {});
    expect((await call(d, d.listReportedStatuses, { includeHistory: true })).statuses).toEqual([]);
    expect((await call(d, d.listReportedStatuses, {})).statuses).toEqual([]);
  });
});
