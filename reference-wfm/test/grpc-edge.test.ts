import { createHash } from "node:crypto";
import { type Client, type ClientReadableStream, status } from "@grpc/grpc-js";
import { admin, api, wfmDriver } from "@margo/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer } from "../src/grpc/server.js";
import type { RunningGrpcServer } from "../src/grpc/server-contract.js";
import {
  call,
  channelCredentials,
  MemoryCore,
  problemOfError,
  TEST_CHANNEL_OPTIONS,
  type TestCredentials,
  TestIdentity,
} from "./grpc-support.js";

const MARGO = "https://docs.margo.org/specification/problem-types#";

let identity: TestIdentity;
let core: MemoryCore;
let server: RunningGrpcServer;
let target: string;
let clientCreds: TestCredentials;
let operatorCreds: TestCredentials;
const open: Client[] = [];
/** Process warnings seen while this file's clients connect (Node emits each deprecation once). */
const warningCodes: string[] = [];
process.on("warning", (w: Error & { code?: string }) => {
  if (w.code) warningCodes.push(w.code);
});

function wm(creds: TestCredentials): api.WorkloadManagementServiceClient {
  const c = new api.WorkloadManagementServiceClient(
    target,
    channelCredentials(creds),
    TEST_CHANNEL_OPTIONS,
  );
  open.push(c);
  return c;
}
function adminClient(creds: TestCredentials): admin.WfmAdminServiceClient {
  const c = new admin.WfmAdminServiceClient(
    target,
    channelCredentials(creds),
    TEST_CHANNEL_OPTIONS,
  );
  open.push(c);
  return c;
}
function driver(creds: TestCredentials): wfmDriver.WfmDriverServiceClient {
  const c = new wfmDriver.WfmDriverServiceClient(
    target,
    channelCredentials(creds),
    TEST_CHANNEL_OPTIONS,
  );
  open.push(c);
  return c;
}

async function refusal(p: Promise<unknown>): Promise<{ code: number; type?: string }> {
  const err = await p.then(
    () => {
      throw new Error("call unexpectedly succeeded");
    },
    (e: unknown) => e,
  );
  const problem = problemOfError(err);
  return { code: (err as { code: number }).code, ...(problem ? { type: problem.type } : {}) };
}

beforeAll(async () => {
  identity = await TestIdentity.create();
  core = new MemoryCore();
  core.accepted.add("dev-a");
  core.accepted.add("dev-b");
  server = await startGrpcServer({
    core,
    identity,
    listen: { host: "127.0.0.1", port: 0 },
    info: {
      vendor: "margo-reference",
      product: "reference-wfm",
      version: "0.0.0",
      margoVersion: "1.0.0-rc.3",
      features: ["watch-manifest"],
    },
  });
  target = `127.0.0.1:${server.port}`;
  clientCreds = await identity.client("dev-a");
  operatorCreds = await identity.operatorCreds("alice");
});

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
afterAll(async () => {
  await server.close();
});

describe("test channels", () => {
  it("never put an IP address in SNI (DEP0123): the target is 127.0.0.1, the name a hint", async () => {
    expect(target.startsWith("127.0.0.1:")).toBe(true);
    const c = wm(clientCreds);
    await call(c, c.getManifest, {});
    expect(warningCodes).not.toContain("DEP0123");
  });
});

describe("WorkloadManagement over mTLS", () => {
  it("GetManifest returns the core's exact bytes and ETag, and not_modified for that ETag", async () => {
    const c = wm(clientCreds);
    const snap = await core.manifest("dev-a");
    const res = await call(c, c.getManifest, {});
    expect(res.notModified).toBe(false);
    expect(Buffer.compare(res.body, snap.body)).toBe(0);
    expect(res.etag).toBe(snap.etag);
    expect(res.etag).toBe(`"sha256:${createHash("sha256").update(res.body).digest("hex")}"`);
    expect(res.contentType).toBe("application/vnd.margo.manifest.v1+json");
    expect(res.manifest?.manifestVersion).toBe(snap.manifestVersion);

    const again = await call(c, c.getManifest, { ifNoneMatch: snap.etag });
    expect(again.notModified).toBe(true);
    expect(again.body.length).toBe(0);
    const stale = await call(c, c.getManifest, { ifNoneMatch: '"sha256:00"' });
    expect(stale.notModified).toBe(false);
  });

  it("item 84: an unacceptable Accept is refused with #server-cannot-generate-response", async () => {
    const c = wm(clientCreds);
    const r = await refusal(call(c, c.getManifest, { accept: "application/xml" }));
    expect(r).toEqual({
      code: status.INVALID_ARGUMENT,
      type: `${MARGO}server-cannot-generate-response`,
    });
    const ok = await call(c, c.getManifest, { accept: "application/*;q=0.5" });
    expect(ok.notModified).toBe(false);
  });

  it("PutCapabilities distinguishes created from replaced; bad bodies map to the REST problem types", async () => {
    const c = wm(clientCreds);
    const body = Buffer.from('{"apiVersion":"x"}');
    expect((await call(c, c.putCapabilities, { deviceId: "d1", body })).created).toBe(true);
    expect((await call(c, c.putCapabilities, { deviceId: "d1", body })).created).toBe(false);
    expect(
      await refusal(call(c, c.putCapabilities, { deviceId: "d1", body: Buffer.from("{") })),
    ).toEqual({
      code: status.INVALID_ARGUMENT,
      type: `${MARGO}invalid-request`,
    });
    expect(await refusal(call(c, c.deleteCapabilities, { deviceId: "never" }))).toEqual({
      code: status.NOT_FOUND,
      type: `${MARGO}device-not-found`,
    });
    await call(c, c.deleteCapabilities, { deviceId: "d1" });
    expect(await core.getDevice("dev-a", "d1")).toBeUndefined();
  });

  it("item 5: a client sees only its own scope (dev-b's device is invisible to dev-a)", async () => {
    const b = wm(await identity.client("dev-b"));
    await call(b, b.putCapabilities, { deviceId: "shared-name", body: Buffer.from("{}") });
    const a = wm(clientCreds);
    expect((await refusal(call(a, a.deleteCapabilities, { deviceId: "shared-name" }))).code).toBe(
      status.NOT_FOUND,
    );
    expect(await core.getDevice("dev-b", "shared-name")).toBeDefined();
  });

  it("a retired client's still-valid SVID gets PERMISSION_DENIED #not-authorized", async () => {
    core.accepted.add("dev-retired");
    const c = wm(await identity.client("dev-retired"));
    await call(c, c.getManifest, {});
    core.accepted.delete("dev-retired");
    expect(await refusal(call(c, c.getManifest, {}))).toEqual({
      code: status.PERMISSION_DENIED,
      type: `${MARGO}not-authorized`,
    });
  });

  it("an operator SVID does not reach WorkloadManagement", async () => {
    const c = wm(operatorCreds);
    expect((await refusal(call(c, c.getManifest, {}))).code).toBe(status.PERMISSION_DENIED);
  });

  it("a wrongly shaped SVID from our own CA is UNAUTHENTICATED everywhere", async () => {
    const creds = await identity.creds("spiffe://example.org/something/else");
    const c = wm(creds);
    expect((await refusal(call(c, c.getManifest, {}))).code).toBe(status.UNAUTHENTICATED);
    const d = driver(creds);
    expect((await refusal(call(d, d.reset, {}))).code).toBe(status.UNAUTHENTICATED);
  });
});

describe("operator-only services", () => {
  it("a client SVID is refused on admin and driver before any handler runs", async () => {
    const resets = core.resets;
    const d = driver(clientCreds);
    expect((await refusal(call(d, d.reset, {}))).code).toBe(status.PERMISSION_DENIED);
    const a = adminClient(clientCreds);
    expect((await refusal(call(a, a.listClients, {}))).code).toBe(status.PERMISSION_DENIED);
    expect(core.resets).toBe(resets);
  });

  it("an operator SVID works on admin (errors carry the about:blank problem)", async () => {
    const a = adminClient(operatorCreds);
    const added = await call(a, a.addClient, { clientId: "dev-new" });
    expect(added.client?.clientId).toBe("dev-new");
    const list = await call(a, a.listClients, {});
    expect(list.clients.map((c) => c.clientId)).toContain("dev-new");
    expect(await refusal(call(a, a.addClient, { clientId: "dev-new" }))).toEqual({
      code: status.ALREADY_EXISTS,
      type: "about:blank",
    });
  });

  it("driver Info answers from the server options", async () => {
    const d = driver(operatorCreds);
    const info = await call(d, d.info, {});
    expect(info).toMatchObject({ vendor: "margo-reference", margoVersion: "1.0.0-rc.3" });
    expect(info.features).toEqual(["watch-manifest"]);
  });

  it("driver round trip: Deploy -> GetManifest -> GetDeployment -> ReportStatus -> ListReportedStatuses", async () => {
    const d = driver(operatorCreds);
    const c = wm(clientCreds);
    const before = await call(c, c.getManifest, {});
    const { deploymentId } = await call(d, d.deploy, {
      applicationId: "hello",
      clientId: "dev-a",
      deviceId: "d9",
      parameters: { greeting: "hi", replicas: 2, nested: { on: true } },
    });
    const after = await call(c, c.getManifest, { ifNoneMatch: before.etag });
    expect(after.notModified).toBe(false);
    const ref = after.manifest?.deployments.find((x) => x.deploymentId === deploymentId);
    expect(ref).toBeDefined();
    const yaml = await call(c, c.getDeployment, { deploymentId, digest: ref?.digest ?? "" });
    expect(`sha256:${createHash("sha256").update(yaml.body).digest("hex")}`).toBe(ref?.digest);
    expect(yaml.etag).toBe(`"${ref?.digest}"`);
    expect(yaml.contentType).toBe("application/yaml");
    expect(yaml.body.toString()).toContain('"nested":{"on":true}');
    const cached = await call(c, c.getDeployment, {
      deploymentId,
      digest: ref?.digest ?? "",
      ifNoneMatch: yaml.etag,
    });
    expect(cached.notModified).toBe(true);

    const status1 = Buffer.from(JSON.stringify({ deploymentId, status: { state: "installed" } }));
    expect((await call(c, c.reportStatus, { deploymentId, body: status1 })).created).toBe(true);
    expect((await call(c, c.reportStatus, { deploymentId, body: status1 })).created).toBe(false);
    const listed = await call(d, d.listReportedStatuses, { deploymentId });
    expect(listed.statuses).toHaveLength(1);
    expect(listed.statuses[0]?.clientId).toBe("dev-a");
    expect(listed.statuses[0]?.receivedAt).toBeInstanceOf(Date);

    await call(d, d.updateDeployment, {
      deploymentId,
      parameters: { greeting: null, list: [1, "a"] },
    });
    expect(core.lastParameters).toEqual({ greeting: null, list: [1, "a"] });
    await call(d, d.undeploy, { deploymentId });
    const gone = await call(c, c.getManifest, {});
    expect(gone.manifest?.deployments.some((x) => x.deploymentId === deploymentId)).toBe(false);
    expect(await refusal(call(d, d.undeploy, { deploymentId }))).toEqual({
      code: status.NOT_FOUND,
      type: "about:blank",
    });
  });

  it("GetDeviceCapabilities reports found=false for an unknown device and true after a PUT", async () => {
    const d = driver(operatorCreds);
    expect(
      (await call(d, d.getDeviceCapabilities, { clientId: "dev-a", deviceId: "x" })).found,
    ).toBe(false);
    const c = wm(clientCreds);
    await call(c, c.putCapabilities, { deviceId: "x", body: Buffer.from("{}") });
    const got = await call(d, d.getDeviceCapabilities, { clientId: "dev-a", deviceId: "x" });
    expect(got.found).toBe(true);
    expect(got.receivedAt).toBeInstanceOf(Date);
    await call(d, d.reset, {});
    expect(
      (await call(d, d.getDeviceCapabilities, { clientId: "dev-a", deviceId: "x" })).found,
    ).toBe(false);
  });
});

/** Collects stream messages; resolves `next()` with the next one. */
function collector(stream: ClientReadableStream<api.WatchManifestResponse>) {
  const queue: { msg: api.WatchManifestResponse; at: number }[] = [];
  const waiters: ((m: { msg: api.WatchManifestResponse; at: number }) => void)[] = [];
  stream.on("data", (msg: api.WatchManifestResponse) => {
    const item = { msg, at: performance.now() };
    const w = waiters.shift();
    if (w) w(item);
    else queue.push(item);
  });
  stream.on("error", () => {});
  return {
    next(): Promise<{ msg: api.WatchManifestResponse; at: number }> {
      const item = queue.shift();
      if (item) return Promise.resolve(item);
      return new Promise((resolve) => waiters.push(resolve));
    },
    pending: () => queue.length,
  };
}

describe("WatchManifest", () => {
  it("sends the current manifest at once, then each change within 100 ms", async () => {
    const c = wm(clientCreds);
    const d = driver(operatorCreds);
    const stream = c.watchManifest({});
    const got = collector(stream);
    const first = await got.next();
    const snap = await core.manifest("dev-a");
    expect(first.msg.etag).toBe(snap.etag);
    expect(Buffer.compare(first.msg.body, snap.body)).toBe(0);

    const latencies: number[] = [];
    const roundTrips: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const dep = await call(d, d.deploy, {
        applicationId: "w",
        clientId: "dev-a",
        deviceId: "d",
        parameters: {},
      });
      const pushed = await got.next();
      latencies.push(pushed.at - core.lastChangeAt);
      roundTrips.push(pushed.at - t0);
      expect(
        pushed.msg.manifest?.deployments.some((x) => x.deploymentId === dep.deploymentId),
      ).toBe(true);
      expect(pushed.msg.etag).toBe((await core.manifest("dev-a")).etag);
    }
    const worst = Math.max(...latencies);
    console.info(
      `WatchManifest change-to-delivery: max ${worst.toFixed(1)} ms; Deploy rpc + push: max ${Math.max(...roundTrips).toFixed(1)} ms`,
    );
    expect(worst).toBeLessThan(100);
    stream.cancel();
    await expect.poll(() => core.watcherCount("dev-a"), { timeout: 2000 }).toBe(0);
  });

  it("with a current if_none_match the first message waits for the next change", async () => {
    const c = wm(clientCreds);
    const d = driver(operatorCreds);
    const current = await core.manifest("dev-a");
    const stream = c.watchManifest({ ifNoneMatch: current.etag });
    const got = collector(stream);
    await expect.poll(() => core.watcherCount("dev-a"), { timeout: 2000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.pending()).toBe(0);
    await call(d, d.deploy, {
      applicationId: "w",
      clientId: "dev-a",
      deviceId: "d",
      parameters: {},
    });
    const pushed = await got.next();
    expect(pushed.msg.manifest?.manifestVersion).toBe(current.manifestVersion + 1n);
    stream.cancel();
    await expect.poll(() => core.watcherCount("dev-a"), { timeout: 2000 }).toBe(0);
  });
});

describe("TLS", () => {
  it("a certificate from a foreign CA never reaches a handler", async () => {
    const foreign = await TestIdentity.create();
    const creds = { ...(await foreign.client("dev-a")), caPem: identity.anchorsPem };
    const before = identity.verifications;
    const c = wm(creds);
    const r = await refusal(call(c, c.getManifest, {}));
    expect(r.code).toBe(status.UNAVAILABLE);
    expect(identity.verifications).toBe(before);
  });

  it("CA rotation keeps serving old connections and new SVIDs; retirement refuses the old CA", async () => {
    const oldClient = wm(clientCreds);
    await call(oldClient, oldClient.getManifest, {});
    await identity.publishNextAuthority();
    await identity.activateNextAuthority();
    // The open connection keeps working.
    await call(oldClient, oldClient.getManifest, {});
    // A client trusting only the new CA proves the server now presents its new SVID.
    const fresh = await identity.client("dev-a");
    const onlyNew = { ...fresh, caPem: identity.issuing.cert.toString("pem") };
    const c = wm(onlyNew);
    expect((await call(c, c.getManifest, {})).notModified).toBe(false);
    // An SVID of the previous CA is still accepted on a new connection during the overlap.
    const overlap = wm({ ...clientCreds, caPem: identity.anchorsPem });
    await call(overlap, overlap.getManifest, {});
    await identity.retirePreviousAuthorities();
    const retired = wm({ ...clientCreds, caPem: identity.anchorsPem });
    expect((await refusal(call(retired, retired.getManifest, {}))).code).toBe(status.UNAVAILABLE);
    const c2 = wm(onlyNew);
    await call(c2, c2.getManifest, {});
  });
});
