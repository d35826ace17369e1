import {
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, DeploymentState, deviceDriver, UnsignedAppStateManifest } from "../src/index.js";

// The generated grpc-js definitions must work on a real loopback server, not only typecheck:
// later issues build the reference WFM and the drivers on them. Unimplemented rpcs return
// UNIMPLEMENTED, which is what a partial vendor adapter would do too.

const U64_MAX = 2n ** 64n - 1n;

function manifestResponse(version: bigint): api.GetManifestResponse {
  const manifest = UnsignedAppStateManifest.fromPartial({ manifestVersion: version });
  const body = Buffer.from(`{"bundle":null,"deployments":[],"manifestVersion":${version}}`);
  return {
    notModified: false,
    manifest,
    etag: '"sha256:test"',
    body,
    contentType: "application/vnd.margo.manifest.v1+json",
  };
}

describe("generated grpc-js services on a loopback server", () => {
  const server = new Server();
  let address = "";
  const seenStatuses: bigint[] = [];

  beforeAll(async () => {
    server.addService(api.WorkloadManagementServiceService, {
      getManifest(
        call: ServerUnaryCall<api.GetManifestRequest, api.GetManifestResponse>,
        callback: sendUnaryData<api.GetManifestResponse>,
      ) {
        if (call.request.ifNoneMatch === '"sha256:test"') {
          callback(null, {
            notModified: true,
            etag: '"sha256:test"',
            body: Buffer.alloc(0),
            contentType: "",
          });
          return;
        }
        callback(null, manifestResponse(U64_MAX));
      },
      reportStatus(
        call: ServerUnaryCall<api.ReportStatusRequest, api.ReportStatusResponse>,
        callback: sendUnaryData<api.ReportStatusResponse>,
      ) {
        seenStatuses.push(call.request.status?.adoptedManifestVersion ?? 0n);
        callback(null, { created: seenStatuses.length === 1 });
      },
      watchManifest(
        call: ServerWritableStream<api.WatchManifestRequest, api.WatchManifestResponse>,
      ) {
        for (const v of [1n, 2n, U64_MAX]) {
          const r = manifestResponse(v);
          call.write({ manifest: r.manifest, etag: r.etag, body: r.body });
        }
        call.end();
      },
    } as Partial<api.WorkloadManagementServiceServer> as api.WorkloadManagementServiceServer);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => {
    server.forceShutdown();
  });

  const client = () =>
    new api.WorkloadManagementServiceClient(address, credentials.createInsecure());

  it("answers GetManifest with a bigint version and honours If-None-Match", async () => {
    const c = client();
    const first = await new Promise<api.GetManifestResponse>((resolve, reject) =>
      c.getManifest({}, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(first.manifest?.manifestVersion).toBe(U64_MAX);
    expect(first.body.toString()).toContain("18446744073709551615");
    const second = await new Promise<api.GetManifestResponse>((resolve, reject) =>
      c.getManifest({ ifNoneMatch: first.etag }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(second.notModified).toBe(true);
    expect(second.manifest).toBeUndefined();
    c.close();
  });

  it("tells created from updated on ReportStatus", async () => {
    const c = client();
    const report = (v: bigint) =>
      new Promise<api.ReportStatusResponse>((resolve, reject) =>
        c.reportStatus(
          api.ReportStatusRequest.fromPartial({
            deploymentId: "d1",
            status: {
              deploymentId: "d1",
              adoptedManifestVersion: v,
              status: { state: DeploymentState.DEPLOYMENT_STATE_INSTALLING },
            },
          }),
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      );
    expect((await report(7n)).created).toBe(true);
    expect((await report(U64_MAX)).created).toBe(false);
    expect(seenStatuses).toEqual([7n, U64_MAX]);
    c.close();
  });

  it("streams WatchManifest revisions in order", async () => {
    const c = client();
    const versions: bigint[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = c.watchManifest({});
      stream.on("data", (m: api.WatchManifestResponse) => {
        versions.push(m.manifest?.manifestVersion ?? 0n);
      });
      stream.on("error", reject);
      stream.on("end", () => resolve());
    });
    expect(versions).toEqual([1n, 2n, U64_MAX]);
    c.close();
  });

  it("returns UNIMPLEMENTED for an rpc the server did not provide", async () => {
    const c = client();
    const err = await new Promise<{ code?: number }>((resolve) =>
      c.getBundle({ digest: "sha256:x" }, (e) => resolve(e ?? {})),
    );
    expect(err.code).toBe(12);
    c.close();
  });

  it("a second service (DeviceDriver) registers beside it without clashes", async () => {
    const s = new Server();
    s.addService(deviceDriver.DeviceDriverServiceService, {
      info(
        _call: ServerUnaryCall<deviceDriver.InfoRequest, deviceDriver.InfoResponse>,
        cb: sendUnaryData<deviceDriver.InfoResponse>,
      ) {
        cb(
          null,
          deviceDriver.InfoResponse.fromPartial({ vendor: "v", supportedRuntimes: ["oci"] }),
        );
      },
    } as Partial<deviceDriver.DeviceDriverServiceServer> as deviceDriver.DeviceDriverServiceServer);
    const port = await new Promise<number>((resolve, reject) =>
      s.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const c = new deviceDriver.DeviceDriverServiceClient(
      `127.0.0.1:${port}`,
      credentials.createInsecure(),
    );
    const info = await new Promise<deviceDriver.InfoResponse>((resolve, reject) =>
      c.info({}, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(info.supportedRuntimes).toEqual(["oci"]);
    c.close();
    s.forceShutdown();
  });
});
