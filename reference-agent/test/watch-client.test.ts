import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { api } from "@margo/proto";
import { writeCredentials } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerFixtureApp } from "../../reference-wfm/test/support/fixture-apps.js";
import { startTestWfm, type TestWfm } from "../../reference-wfm/test/support/start-wfm.js";
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
