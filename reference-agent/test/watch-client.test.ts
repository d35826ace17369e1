import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { api } from "@margo/proto";
import { writeCredentials } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerFixtureApp } from "../../reference-wfm/test/support/fixture-apps.js";
import { startTestWfm, type TestWfm } from "../../reference-wfm/test/support/start-wfm.js";
import type { DailyWindow } from "../src/config.js";
import { FileAgentIdentity } from "../src/identity/agent-identity.js";
import { silentLog } from "../src/log.js";
import { RestWfmClient } from "../src/wfm/rest-client.js";
import { ManifestWatch } from "../src/wfm/watch-client.js";
import {
  MemoryTrustStore,
  makeDomain,
  type TestDomain,
  testAgentConfig,
  WFM_ID,
} from "./support/trust-pki.js";

const FAST = { baseMs: 50, capMs: 200 };
const watches: ManifestWatch[] = [];
afterAll(() => {
  for (const w of watches) w.stop();
});

describe("ManifestWatch on the real reference WFM", () => {
  let wfm: TestWfm;
  let identityDir: string;

  beforeAll(async () => {
    wfm = await startTestWfm({ grpc: true });
    identityDir = await mkdtemp(join(tmpdir(), "margo-t-watch-"));
    await writeCredentials(identityDir, await wfm.admit("dev-watch"));
  });
  afterAll(async () => {
    await wfm?.dispose();
    await rm(identityDir, { recursive: true, force: true });
  });

  it("items 42-43: up with the current ETag, then a deploy at the WFM fires onChange with the new ETag, equal to REST's", async () => {
    const config = testAgentConfig(identityDir, {
      wfm: { url: `https://127.0.0.1:${wfm.managementPort}`, watch: true },
    });
    const identity = await FileAgentIdentity.open(
      config,
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    expect(identity.expectedWfmId).toBe(wfm.identity.wfmSpiffeId);
    const rest = new RestWfmClient(config.wfm.url, identity, { requestTimeoutMs: 10_000 });
    try {
      const watch = new ManifestWatch(`127.0.0.1:${wfm.grpcPort}`, identity, { backoff: FAST });
      watches.push(watch);
      const etags: string[] = [];
      watch.start((etag) => etags.push(etag));
      await vi.waitFor(() => expect(watch.up).toBe(true), { timeout: 10_000 });
      const before = await rest.getManifest();
      expect(before.status).toBe(200);
      expect(etags).toEqual([before.status === 200 ? before.etag : ""]);

      const app = await registerFixtureApp(wfm.core, "compose-single");
      await wfm.core.createDeployment({
        applicationId: app.applicationId,
        clientId: "dev-watch",
        deviceId: "dev-1",
      });
      await vi.waitFor(() => expect(etags).toHaveLength(2), { timeout: 10_000 });
      const after = await rest.getManifest(etags[0]);
      expect(after.status).toBe(200);
      if (after.status !== 200) return;
      expect(after.etag).toBe(etags[1]);
      expect(JSON.parse(Buffer.from(after.body).toString()).deployments).toHaveLength(1);
    } finally {
      rest.close();
    }
  });
});

describe("ManifestWatch server identity (item 8)", () => {
  let domain: TestDomain;
  const servers: Server[] = [];
  let handled = 0;

  async function serve(spiffeId: string): Promise<number> {
    const svid = await domain.serverSvid(spiffeId);
    const server = new Server();
    server.addService(api.WorkloadManagementServiceService, {
      watchManifest: (call: ServerWritableStream<api.WatchManifestRequest, unknown>) => {
        handled++;
        call.write({ etag: '"e1"', body: Buffer.from("{}") });
      },
    });
    servers.push(server);
    return new Promise((resolve, reject) =>
      server.bindAsync(
        "127.0.0.1:0",
        ServerCredentials.createSsl(
          Buffer.from(domain.root.certPem),
          [{ cert_chain: Buffer.from(svid.certPem), private_key: Buffer.from(svid.keyPem) }],
          false,
        ),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
  }

  beforeAll(async () => {
    domain = await makeDomain();
  });
  afterAll(async () => {
    for (const s of servers) s.forceShutdown();
    await domain.cleanup();
  });

  async function watchOn(port: number) {
    const identity = await FileAgentIdentity.open(
      testAgentConfig(domain.identityDir),
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    const logs: Array<Record<string, unknown>> = [];
    const w = new ManifestWatch(`127.0.0.1:${port}`, identity, {
      backoff: FAST,
      log: (e) => logs.push(e),
    });
    watches.push(w);
    const etags: string[] = [];
    w.start((e) => etags.push(e));
    return { w, etags, logs };
  }

  it("the right WFM ID: up, first revision delivered (control for the next test)", async () => {
    const { w, etags } = await watchOn(await serve(WFM_ID));
    await vi.waitFor(() => expect(w.up).toBe(true), { timeout: 5_000 });
    expect(etags).toEqual(['"e1"']);
    w.stop();
    expect(w.up).toBe(false);
  });

  it("another WFM's SPIFFE ID: never up, nothing delivered, the handler never runs, the rule is logged", async () => {
    const port = await serve("spiffe://example.org/margo/wfm/other");
    const handledBefore = handled;
    const { w, etags, logs } = await watchOn(port);
    await vi.waitFor(
      () =>
        expect(logs.filter((l) => l.msg === "watch failed; reconnecting").length).toBeGreaterThan(
          2,
        ),
      { timeout: 5_000 },
    );
    expect(w.up).toBe(false);
    expect(etags).toEqual([]);
    expect(handled).toBe(handledBefore);
    expect(logs.some((l) => l.rule === "spiffe-id-mismatch")).toBe(true);
    w.stop();
  });
});

describe("ManifestWatch and downtime (item 87: no requests, no retries)", () => {
  let domain: TestDomain;
  let grpcServer: Server;
  let proxy: NetServer;
  let proxyPort = 0;
  /** TCP connections that reached the WFM side (through a counting forwarder). */
  let connections = 0;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    domain = await makeDomain();
    const svid = await domain.serverSvid(WFM_ID);
    grpcServer = new Server();
    grpcServer.addService(api.WorkloadManagementServiceService, {
      watchManifest: (call: ServerWritableStream<api.WatchManifestRequest, unknown>) => {
        call.write({ etag: '"d1"', body: Buffer.from("{}") });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(
        "127.0.0.1:0",
        ServerCredentials.createSsl(
          Buffer.from(domain.root.certPem),
          [{ cert_chain: Buffer.from(svid.certPem), private_key: Buffer.from(svid.keyPem) }],
          false,
        ),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
    proxy = createServer((down) => {
      connections++;
      const up = connect(grpcPort, "127.0.0.1");
      // Either side ending ends the pair: a half-closed leftover would look like a live link.
      const both = () => {
        down.destroy();
        up.destroy();
      };
      for (const sock of [down, up]) {
        sockets.add(sock);
        sock.on("close", () => sockets.delete(sock));
        sock.on("end", both);
        sock.on("error", both);
      }
      down.pipe(up).pipe(down);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    proxyPort = (proxy.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => proxy.close(r));
    grpcServer.forceShutdown();
    await domain.cleanup();
  });

  /** 2030-01-01T<hh:mm:ss>Z plus the real time passed since the call. */
  function clockAt(hhmmss: string): () => number {
    const base = Date.parse(`2030-01-01T${hhmmss}Z`);
    const t0 = Date.now();
    return () => base + (Date.now() - t0);
  }

  async function watchWith(downtime: DailyWindow[], now: () => number) {
    const config = testAgentConfig(domain.identityDir, { downtime });
    const identity = await FileAgentIdentity.open(
      config,
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    const logs: Array<Record<string, unknown>> = [];
    const w = new ManifestWatch(`127.0.0.1:${proxyPort}`, identity, {
      backoff: FAST,
      schedule: config,
      now,
      log: (e) => logs.push(e),
    });
    watches.push(w);
    const etags: string[] = [];
    w.start((e) => etags.push(e));
    return { w, etags, logs };
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("a window covering now: no connection is attempted, and the pause names the window's end", async () => {
    const before = connections;
    const { w, etags, logs } = await watchWith(
      [{ start: "12:00", end: "13:00" }],
      clockAt("12:00:30"),
    );
    await sleep(800);
    expect(connections).toBe(before);
    expect(w.up).toBe(false);
    expect(etags).toEqual([]);
    expect(logs.find((l) => String(l.msg).startsWith("watch paused"))?.until).toBe(
      "2030-01-01T13:00:00.000Z",
    );
    w.stop();
  });

  it("a window that ends soon: nothing during it, up right after it ends", async () => {
    const before = connections;
    const { w, etags } = await watchWith(
      [{ start: "12:00", end: "12:01" }],
      clockAt("12:00:59.300"),
    );
    await sleep(300);
    expect(connections).toBe(before);
    await vi.waitFor(() => expect(w.up).toBe(true), { timeout: 5_000 });
    expect(connections).toBeGreaterThan(before);
    expect(etags).toEqual(['"d1"']);
    w.stop();
  });

  it("a window that starts while the stream is up closes it, and nothing reconnects inside it", async () => {
    const { w, logs } = await watchWith(
      [{ start: "12:00", end: "12:30" }],
      clockAt("11:59:58.800"),
    );
    await vi.waitFor(() => expect(w.up).toBe(true), { timeout: 5_000 });
    await vi.waitFor(() => expect(w.up).toBe(false), { timeout: 5_000 });
    expect(logs.some((l) => String(l.msg).startsWith("watch closed for downtime"))).toBe(true);
    await vi.waitFor(() => expect(sockets.size).toBe(0), { timeout: 3_000 });
    const during = connections;
    await sleep(800);
    expect(connections).toBe(during);
    expect(w.up).toBe(false);
    w.stop();
  });
});
