import type { IncomingMessage, ServerResponse } from "node:http";
import {
  anchorJwk,
  createRootCa,
  encodeAnchorsBundle,
  type MintedCertificate,
  mintSvid,
} from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type DailyWindow, normaliseConfig } from "../src/config.js";
import { FileAgentIdentity } from "../src/identity/agent-identity.js";
import { BundleRefresher } from "../src/identity/bundle-refresher.js";
import { IdentityCheckError } from "../src/identity/types.js";
import { silentLog } from "../src/log.js";
import {
  issuerOf,
  MemoryTrustStore,
  makeDomain,
  startServer,
  TD,
  type TestDomain,
  type TestServer,
  testAgentConfig,
  WFM_ID,
} from "./support/trust-pki.js";

/**
 * Trust bundle refresh against a real HTTPS MIS (items 17-24): server-only TLS, the MIS's SVID
 * judged against the anchors the agent already holds, documents switched per test.
 */

let domain: TestDomain;
let rootB: MintedCertificate;
let misServer: TestServer;
/** Chain of a WFM SVID under root B (verifies only once B is an anchor). */
let chainB: Buffer[];
/** Chain of the MIS's WFM SVID under root A. */
let chainA: Buffer[];
let docs: Record<string, { body: string | Uint8Array; etag?: string }> = {};

function serveDocs(req: IncomingMessage, res: ServerResponse) {
  const doc = docs[req.url ?? ""];
  if (!doc) return res.writeHead(404).end();
  if (doc.etag && req.headers["if-none-match"] === doc.etag)
    return res.writeHead(304, { etag: doc.etag }).end();
  res
    .writeHead(200, { "content-type": "application/json", ...(doc.etag ? { etag: doc.etag } : {}) })
    .end(doc.body);
}

beforeAll(async () => {
  domain = await makeDomain({ sequence: 1n });
  rootB = await createRootCa({ trustDomain: TD, commonName: "root B" });
  const wfmA = await domain.serverSvid(WFM_ID);
  const wfmB = await mintSvid({ issuer: issuerOf(rootB), spiffeId: WFM_ID });
  chainA = [wfmA.certDer];
  chainB = [wfmB.certDer];
  misServer = await startServer({ certPem: wfmA.certPem, keyPem: wfmA.keyPem, handler: serveDocs });
});

afterAll(async () => {
  await misServer.close();
  await domain.cleanup();
});

async function setup(
  trust: {
    bundleUrl?: string;
    discoveryUrl?: string;
    refreshIntervalSeconds?: number;
    serverSpiffeId?: string;
    minRefreshSeconds?: number;
  },
  extra: { downtime?: DailyWindow[]; now?: () => number } = {},
) {
  const store = new MemoryTrustStore();
  const config = testAgentConfig(domain.identityDir, {
    trust: { refreshIntervalSeconds: trust.refreshIntervalSeconds ?? 300, ...trust },
    ...(extra.downtime ? { downtime: extra.downtime } : {}),
  });
  const identity = await FileAgentIdentity.open(config, store.asStore(), silentLog);
  const refresher = new BundleRefresher(config, identity, store.asStore(), silentLog, {
    requestTimeoutMs: 5_000,
    ...(extra.now ? { now: extra.now } : {}),
  });
  return { store, identity, refresher };
}

/** Run `fn` against a throwaway MIS presenting `svid`, serving `docs` like the main one. */
async function withMis(
  svid: { certPem: string; keyPem: string },
  fn: (mis: TestServer) => Promise<void>,
) {
  const mis = await startServer({ certPem: svid.certPem, keyPem: svid.keyPem, handler: serveDocs });
  try {
    await fn(mis);
  } finally {
    await mis.close();
  }
}

/** 2030-01-01T<hh:mm:ss>Z plus however much real time has passed since the call. */
function clockAt(hhmmss: string): () => number {
  const base = Date.parse(`2030-01-01T${hhmmss}Z`);
  const t0 = Date.now();
  return () => base + (Date.now() - t0);
}

const bundleUrl = () => `${misServer.url}/.well-known/spiffe/bundle.json`;

function bundle(anchors: MintedCertificate[], opts: { sequence?: bigint; hint?: number } = {}) {
  return encodeAnchorsBundle(
    anchors.map((a) => a.certDer),
    {
      ...(opts.sequence !== undefined ? { sequence: opts.sequence } : {}),
      ...(opts.hint !== undefined ? { refreshHintSeconds: opts.hint } : {}),
    },
  );
}

describe("BundleRefresher (items 17-24)", () => {
  it("item 22: an accepted bundle replaces the anchors; the old anchor is no longer accepted and listeners hear it", async () => {
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
    const { store, identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    identity.verifyServer(chainA);
    expect(() => identity.verifyServer(chainB)).toThrow(IdentityCheckError);
    const changed = vi.fn();
    identity.onChange(changed);
    const out = await refresher.refreshNow();
    expect(out).toEqual({ result: "accepted", sequence: 2n, anchors: 1 });
    expect(changed).toHaveBeenCalledTimes(1);
    identity.verifyServer(chainB);
    let rule: string | undefined;
    try {
      identity.verifyServer(chainA);
    } catch (e) {
      rule = (e as IdentityCheckError).rule;
    }
    expect(rule).toBe("svid.untrusted-chain");
    expect(store.trust?.sequence).toBe(2n);
    expect(identity.tls().anchorsPem).toBe(rootB.certPem);
  });

  it("item 21: a bundle with zero X.509 anchors (only a jwt-svid key) is rejected and the old anchors kept", async () => {
    const jwt = { ...anchorJwk(rootB.certDer), use: "jwt-svid", kid: "j1" } as Record<
      string,
      unknown
    >;
    delete jwt.x5c;
    docs = {
      "/.well-known/spiffe/bundle.json": {
        body: JSON.stringify({ spiffe_sequence: 9, keys: [jwt] }),
      },
    };
    const { store, identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-empty");
    identity.verifyServer(chainA);
    expect(identity.trustState().sequence).toBe(1n);
    expect(store.errors.map((e) => e.kind)).toEqual(["trust-bundle-empty"]);
  });

  it("item 21: an empty keys array is rejected the same way", async () => {
    docs = { "/.well-known/spiffe/bundle.json": { body: '{"spiffe_sequence":3,"keys":[]}' } };
    const { identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-empty");
    identity.verifyServer(chainA);
  });

  it("item 23: a lower spiffe_sequence than the one in use is rejected", async () => {
    docs = {
      "/.well-known/spiffe/bundle.json": { body: bundle([domain.root, rootB], { sequence: 5n }) },
    };
    const { store, identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    expect((await refresher.refreshNow()).result).toBe("accepted");
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([domain.root], { sequence: 4n }) } };
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-regressed");
    expect(identity.trustState().anchors).toBe(2);
    identity.verifyServer(chainB);
    expect(store.errors.at(-1)?.kind).toBe("trust-bundle-regressed");
  });

  it("item 20: jwt-svid keys and unknown members are ignored; the x509 anchors are taken", async () => {
    const jwt = { ...anchorJwk(rootB.certDer), use: "jwt-svid", kid: "j1" } as Record<
      string,
      unknown
    >;
    delete jwt.x5c;
    const doc = JSON.parse(Buffer.from(bundle([domain.root, rootB], { sequence: 2n })).toString());
    doc.keys.push(jwt);
    doc.keys[0].vendor_note = "ignored";
    doc.x_vendor = { anything: [1, 2] };
    docs = { "/.well-known/spiffe/bundle.json": { body: JSON.stringify(doc) } };
    const { identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    const out = await refresher.refreshNow();
    expect(out).toEqual({ result: "accepted", sequence: 2n, anchors: 2 });
    identity.verifyServer(chainA);
    identity.verifyServer(chainB);
  });

  it("item 19: discovery naming an http:// trustBundleUri is rejected, nothing fetched from it", async () => {
    docs = {
      "/.well-known/margo": {
        body: JSON.stringify({
          trustDomain: TD,
          trustBundleUri: `http://127.0.0.1:${misServer.port}/b.json`,
        }),
      },
      "/b.json": { body: bundle([rootB], { sequence: 7n }) },
    };
    const { identity, refresher } = await setup({
      discoveryUrl: `${misServer.url}/.well-known/margo`,
    });
    const before = misServer.requests.length;
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-not-https");
    expect(misServer.requests.slice(before).map((r) => r.url)).toEqual(["/.well-known/margo"]);
    expect(identity.trustState().sequence).toBe(1n);
  });

  it("item 24: discovery for another trust domain is flagged as trust-domain-mismatch", async () => {
    docs = {
      "/.well-known/margo": {
        body: JSON.stringify({ trustDomain: "other.org", trustBundleUri: bundleUrl() }),
      },
      "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 7n }) },
    };
    const { store, refresher } = await setup({
      discoveryUrl: `${misServer.url}/.well-known/margo`,
    });
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-domain-mismatch");
    expect(store.errors.map((e) => e.kind)).toEqual(["trust-domain-mismatch"]);
  });

  it("items 17, 20: discovery (with unknown members) leads to the bundle, which is accepted", async () => {
    docs = {
      "/.well-known/margo": {
        body: JSON.stringify({ trustDomain: TD, trustBundleUri: bundleUrl(), extra: true }),
      },
      "/.well-known/spiffe/bundle.json": { body: bundle([domain.root, rootB], { sequence: 3n }) },
    };
    const { refresher } = await setup({ discoveryUrl: `${misServer.url}/.well-known/margo` });
    expect(await refresher.refreshNow()).toEqual({ result: "accepted", sequence: 3n, anchors: 2 });
  });

  it("item 23: a due refresh goes to the network with If-None-Match; 304 leaves everything as is", async () => {
    docs = {
      "/.well-known/spiffe/bundle.json": {
        body: bundle([domain.root, rootB], { sequence: 2n }),
        etag: '"b2"',
      },
    };
    const { identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    expect((await refresher.refreshNow()).result).toBe("accepted");
    const before = misServer.requests.length;
    expect(await refresher.refreshNow()).toEqual({ result: "unchanged" });
    expect(misServer.requests.length).toBe(before + 1);
    expect(misServer.requests.at(-1)?.headers["if-none-match"]).toBe('"b2"');
    expect(identity.trustState().anchors).toBe(2);
  });

  it("item 23: spiffe_refresh_hint drives the next refresh; without it the configured period", async () => {
    docs = {
      "/.well-known/spiffe/bundle.json": {
        body: bundle([domain.root], { sequence: 2n, hint: 120 }),
      },
    };
    const { refresher } = await setup({ bundleUrl: bundleUrl(), refreshIntervalSeconds: 900 });
    const t0 = Date.now();
    refresher.start();
    try {
      await vi.waitFor(() => expect(refresher.nextRefreshAt()).toBeGreaterThan(t0 + 60_000), {
        timeout: 5_000,
      });
      const next = refresher.nextRefreshAt() ?? 0;
      expect(next - t0).toBeGreaterThanOrEqual(120_000);
      expect(next - Date.now()).toBeLessThanOrEqual(120_000);
    } finally {
      refresher.stop();
    }
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([domain.root], { sequence: 2n }) } };
    const second = await setup({ bundleUrl: bundleUrl(), refreshIntervalSeconds: 900 });
    const t1 = Date.now();
    second.refresher.start();
    try {
      await vi.waitFor(
        () => expect(second.refresher.nextRefreshAt()).toBeGreaterThan(t1 + 60_000),
        {
          timeout: 5_000,
        },
      );
      expect((second.refresher.nextRefreshAt() ?? 0) - t1).toBeGreaterThanOrEqual(900_000);
    } finally {
      second.refresher.stop();
    }
  });

  it("item 18: an MIS whose SVID does not chain to the anchors in use is refused (no TOFU)", async () => {
    const stranger = await makeDomain();
    const svid = await mintSvid({ issuer: issuerOf(stranger.root), spiffeId: WFM_ID });
    const fake = await startServer({
      certPem: svid.certPem,
      keyPem: svid.keyPem,
      handler: serveDocs,
    });
    try {
      docs = {
        "/.well-known/spiffe/bundle.json": { body: bundle([stranger.root], { sequence: 99n }) },
      };
      const { identity, refresher } = await setup({
        bundleUrl: `${fake.url}/.well-known/spiffe/bundle.json`,
      });
      const out = await refresher.refreshNow();
      expect(out.result === "rejected" && out.kind).toBe("trust-bundle-unreachable");
      expect(fake.requests).toHaveLength(0);
      expect(identity.trustState().sequence).toBe(1n);
    } finally {
      await fake.close();
      await stranger.cleanup();
    }
  });

  it("an MIS presenting an SVID of another trust domain under our anchor is refused", async () => {
    const svid = await domain.serverSvid("spiffe://other.org/margo/wfm/wfm-1");
    const fake = await startServer({
      certPem: svid.certPem,
      keyPem: svid.keyPem,
      handler: serveDocs,
    });
    try {
      docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 9n }) } };
      const { refresher } = await setup({
        bundleUrl: `${fake.url}/.well-known/spiffe/bundle.json`,
      });
      const out = await refresher.refreshNow();
      expect(out.result === "rejected" && out.message).toMatch(/svid.foreign-trust-domain/);
      expect(fake.requests).toHaveLength(0);
    } finally {
      await fake.close();
    }
  });
  it("item 22: a client SVID of our own trust domain (serverAuth too) serving a bundle is refused; the anchors stay", async () => {
    const otherDevice = await domain.serverSvid(`${WFM_ID}/client/dev-2`);
    await withMis(otherDevice, async (mis) => {
      docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 50n }) } };
      const { store, identity, refresher } = await setup({
        bundleUrl: `${mis.url}/.well-known/spiffe/bundle.json`,
      });
      const out = await refresher.refreshNow();
      expect(out.result === "rejected" && out.kind).toBe("trust-bundle-unreachable");
      expect(out.result === "rejected" && out.message).toMatch(/spiffe-id-mismatch|only spiffe:/);
      expect(mis.requests).toHaveLength(0);
      expect(identity.trustState().sequence).toBe(1n);
      identity.verifyServer(chainA);
      expect(() => identity.verifyServer(chainB)).toThrow(IdentityCheckError);
      expect(store.trust?.sequence).toBe(1n);
    });
  });

  it("any other ID of the domain (an MIS ID not configured) is refused too", async () => {
    const misSvid = await domain.serverSvid(`spiffe://${TD}/margo/mis`);
    await withMis(misSvid, async (mis) => {
      docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
      const { identity, refresher } = await setup({
        bundleUrl: `${mis.url}/.well-known/spiffe/bundle.json`,
      });
      const out = await refresher.refreshNow();
      expect(out.result === "rejected" && out.kind).toBe("trust-bundle-unreachable");
      expect(mis.requests).toHaveLength(0);
      expect(identity.trustState().anchors).toBe(1);
    });
  });

  it("trust.serverSpiffeId: the configured MIS ID is accepted, and only it (the WFM ID is then refused)", async () => {
    const misId = `spiffe://${TD}/margo/mis`;
    const misSvid = await domain.serverSvid(misId);
    await withMis(misSvid, async (mis) => {
      docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
      const { identity, refresher } = await setup({
        bundleUrl: `${mis.url}/.well-known/spiffe/bundle.json`,
        serverSpiffeId: misId,
      });
      expect(await refresher.refreshNow()).toEqual({
        result: "accepted",
        sequence: 2n,
        anchors: 1,
      });
      identity.verifyServer(chainB);
    });
    const { refresher } = await setup({ bundleUrl: bundleUrl(), serverSpiffeId: misId });
    const before = misServer.requests.length;
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-unreachable");
    expect(misServer.requests.length).toBe(before);
  });

  it("trust.serverSpiffeId naming a WFM client is refused by the config and by the refresher", async () => {
    const clientId = `${WFM_ID}/client/dev-2`;
    expect(() =>
      normaliseConfig({
        ...testAgentConfig(domain.identityDir),
        trust: { refreshIntervalSeconds: 300, serverSpiffeId: clientId },
      }),
    ).toThrow(/trust.serverSpiffeId/);
    const otherDevice = await domain.serverSvid(clientId);
    await withMis(otherDevice, async (mis) => {
      docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
      const { identity, refresher } = await setup({
        bundleUrl: `${mis.url}/.well-known/spiffe/bundle.json`,
        serverSpiffeId: clientId,
      });
      const out = await refresher.refreshNow();
      expect(out.result === "rejected" && out.kind).toBe("trust-bundle-invalid");
      expect(mis.requests).toHaveLength(0);
      expect(identity.trustState().sequence).toBe(1n);
    });
  });

  it("item 23: a bundle without spiffe_sequence after a sequenced one is refused as regressed", async () => {
    const { store, identity, refresher } = await setup({ bundleUrl: bundleUrl() });
    expect(identity.trustState().sequence).toBe(1n);
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB]) } };
    const out = await refresher.refreshNow();
    expect(out.result === "rejected" && out.kind).toBe("trust-bundle-regressed");
    identity.verifyServer(chainA);
    expect(() => identity.verifyServer(chainB)).toThrow(IdentityCheckError);
    expect(store.errors.at(-1)?.kind).toBe("trust-bundle-regressed");
  });

  it("item 87: inside downtime the scheduled refresh sends nothing and is deferred to the window's end", async () => {
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
    const { identity, refresher } = await setup(
      { bundleUrl: bundleUrl() },
      { downtime: [{ start: "12:00", end: "13:00" }], now: clockAt("12:00:30") },
    );
    const before = misServer.requests.length;
    refresher.start();
    try {
      await new Promise((r) => setTimeout(r, 600));
      expect(misServer.requests.length).toBe(before);
      expect(refresher.nextRefreshAt()).toBe(Date.parse("2030-01-01T13:00:00Z"));
      expect(identity.trustState().sequence).toBe(1n);
    } finally {
      refresher.stop();
    }
  });

  it("item 87: a downtime that ends soon: nothing during it, the refresh goes out right after", async () => {
    docs = { "/.well-known/spiffe/bundle.json": { body: bundle([rootB], { sequence: 2n }) } };
    const { identity, refresher } = await setup(
      { bundleUrl: bundleUrl() },
      { downtime: [{ start: "12:00", end: "12:01" }], now: clockAt("12:00:59.200") },
    );
    const before = misServer.requests.length;
    refresher.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(misServer.requests.length).toBe(before);
      await vi.waitFor(() => expect(identity.trustState().sequence).toBe(2n), { timeout: 5_000 });
      expect(misServer.requests.length).toBe(before + 1);
    } finally {
      refresher.stop();
    }
  });
});

describe("BundleRefresher lifecycle and refresh floor", () => {
  /** Hold every request to `path` until the returned release() (answers with `answer`). */
  function holdPath(path: string, answer: { status: number; body?: string | Uint8Array }) {
    const pending: ServerResponse[] = [];
    const closedEarly: boolean[] = [];
    misServer.setHandler((req, res) => {
      if (req.url !== path) return serveDocs(req, res);
      const i = pending.push(res) - 1;
      closedEarly[i] = false;
      res.on("close", () => {
        closedEarly[i] = !res.writableFinished;
      });
    });
    return {
      pending,
      closedEarly,
      release: () => {
        for (const r of pending)
          if (!r.destroyed) r.writeHead(answer.status).end(answer.body ?? "");
      },
    };
  }

  it("stop() during a slow fetch aborts it: resolves at once, no store write, anchors kept, nothing armed", async () => {
    docs = {};
    const path = "/slow/bundle.json";
    const hold = holdPath(path, { status: 200, body: bundle([rootB], { sequence: 2n }) });
    try {
      const { store, identity, refresher } = await setup({
        bundleUrl: `${misServer.url}${path}`,
        minRefreshSeconds: 0.1,
        refreshIntervalSeconds: 0.1,
      });
      const attempt = refresher.refreshNow();
      refresher.start();
      await vi.waitFor(() => expect(hold.pending.length).toBe(1), { timeout: 5_000 });
      const trustBefore = store.trust;
      const t0 = Date.now();
      await refresher.stop();
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(await attempt).toEqual({ result: "aborted" });
      expect(refresher.nextRefreshAt()).toBeUndefined();
      await vi.waitFor(() => expect(hold.closedEarly[0]).toBe(true), { timeout: 2_000 });
      hold.release();
      await new Promise((r) => setTimeout(r, 500));
      // Several floors later: no second request, nothing written, the old anchors in use.
      expect(hold.pending.length).toBe(1);
      expect(store.errors).toEqual([]);
      expect(store.trust).toBe(trustBefore);
      expect(identity.trustState().sequence).toBe(1n);
    } finally {
      misServer.setHandler(serveDocs);
    }
  });

  it("a refresher stopped during a fetch and started again (DeviceDriver Reset) fetches afresh and keeps its schedule", async () => {
    const path = "/slow-then-fast/bundle.json";
    const hold = holdPath(path, { status: 500 });
    try {
      const { identity, refresher } = await setup({ bundleUrl: `${misServer.url}${path}` });
      refresher.start();
      await vi.waitFor(() => expect(hold.pending.length).toBe(1), { timeout: 5_000 });
      const stopped = refresher.stop();
      // Restarted before the abort settled: the aborted attempt must not be shared.
      misServer.setHandler(serveDocs);
      docs = { [path]: { body: bundle([rootB], { sequence: 2n }) } };
      refresher.start();
      await stopped;
      await vi.waitFor(() => expect(identity.trustState().sequence).toBe(2n), { timeout: 5_000 });
      expect(refresher.nextRefreshAt()).toBeGreaterThan(Date.now());
      await refresher.stop();
    } finally {
      misServer.setHandler(serveDocs);
    }
  });

  it("trust.minRefreshSeconds bounds a short spiffe_refresh_hint (default 5 s; lowered, the hint counts)", async () => {
    docs = {
      "/.well-known/spiffe/bundle.json": { body: bundle([domain.root], { sequence: 2n, hint: 1 }) },
    };
    const nextAfterFirst = async (minRefreshSeconds?: number) => {
      const { refresher } = await setup({
        bundleUrl: bundleUrl(),
        ...(minRefreshSeconds !== undefined ? { minRefreshSeconds } : {}),
      });
      const t0 = Date.now();
      refresher.start();
      try {
        await vi.waitFor(() => expect(refresher.nextRefreshAt()).toBeGreaterThan(t0 + 500), {
          timeout: 5_000,
        });
        return (refresher.nextRefreshAt() ?? 0) - t0;
      } finally {
        await refresher.stop();
      }
    };
    const byDefault = await nextAfterFirst();
    expect(byDefault).toBeGreaterThanOrEqual(5_000);
    const lowered = await nextAfterFirst(1);
    expect(lowered).toBeGreaterThanOrEqual(1_000);
    expect(lowered).toBeLessThan(2_500);
  });

  it("trust.minRefreshSeconds: default 5 in a normalised config; zero, negative or a string refused", () => {
    const raw = {
      stateDir: "/tmp/x",
      deviceId: "d",
      identityDir: "/tmp/y",
      wfm: { url: "https://127.0.0.1:1" },
    };
    expect(normaliseConfig(raw).trust.minRefreshSeconds).toBe(5);
    expect(normaliseConfig({ ...raw, trust: { minRefreshSeconds: 1 } }).trust).toMatchObject({
      minRefreshSeconds: 1,
      refreshIntervalSeconds: 300,
    });
    for (const bad of [0, -1, "1", Number.NaN]) {
      expect(() => normaliseConfig({ ...raw, trust: { minRefreshSeconds: bad } })).toThrow(
        /trust\.minRefreshSeconds/,
      );
    }
  });
});
