import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startAgent } from "../src/agent.js";
import { type AgentConfig, defaultConfig } from "../src/config.js";
import { AgentSupervisor } from "../src/driver/supervisor.js";
import type { LogEvent } from "../src/log.js";
import { SqliteAgentStore } from "../src/state/sqlite-store.js";
import {
  makeDomain,
  startServer,
  type TestDomain,
  type TestServer,
  WFM_ID,
} from "./support/trust-pki.js";

/**
 * The lifecycle of the trust bundle refresh inside a real agent (real SQLite store): closing the
 * agent, directly or through a DeviceDriver Configure, must abort a bundle fetch in flight and
 * leave nothing that later writes to the closed store or reaches the old bundle URL. A late
 * `recordError` on the closed store used to kill the agent process in the device suite.
 */

let domain: TestDomain;
let mis: TestServer;
/** Responses the MIS holds back, to keep a refresh in flight for as long as a test wants. */
let held: Array<{ res: ServerResponse; closedEarly: () => boolean }> = [];
const dirs: string[] = [];

function holdResponse(_req: IncomingMessage, res: ServerResponse) {
  let closed = false;
  res.on("close", () => {
    closed = !res.writableFinished;
  });
  held.push({ res, closedEarly: () => closed });
}

/** Answer every held request (500: the refresher would record `trust-bundle-unreachable`). */
function releaseAll() {
  for (const h of held) if (!h.res.destroyed) h.res.writeHead(500).end();
}

beforeAll(async () => {
  domain = await makeDomain({ bundle: "pem" });
  const svid = await domain.serverSvid(WFM_ID);
  mis = await startServer({ certPem: svid.certPem, keyPem: svid.keyPem, handler: holdResponse });
});

afterEach(() => {
  releaseAll();
  held = [];
  vi.restoreAllMocks();
});

afterAll(async () => {
  await mis?.close();
  await domain?.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const bundleUrl = () => `${mis.url}/.well-known/spiffe/bundle.json`;

/** No providers (no Docker needed), an unreachable WFM, a 0.2 s refresh floor. */
function agentConfig(stateDir: string, identityDir: string): AgentConfig {
  const config = defaultConfig(stateDir, {
    deviceId: "dev-1",
    wfmUrl: "https://127.0.0.1:1",
    identityDir,
  });
  config.compose.enabled = false;
  config.trust.minRefreshSeconds = 0.2;
  config.trust.refreshIntervalSeconds = 0.2;
  return config;
}

/** recordError calls of the trust refresher, on any SqliteAgentStore (closed or not). */
function spyTrustErrors(): () => number {
  const spy = vi.spyOn(SqliteAgentStore.prototype, "recordError");
  return () => spy.mock.calls.filter(([kind]) => String(kind).startsWith("trust-")).length;
}

describe("agent close stops the trust bundle refresh", () => {
  it("close() during a slow bundle fetch aborts it: no store use afterwards, no further fetch", async () => {
    const trustErrors = spyTrustErrors();
    const stateDir = await tempDir("margo-agent-close-");
    const config = agentConfig(stateDir, domain.identityDir);
    config.trust.bundleUrl = bundleUrl();
    const before = mis.requests.length;
    const logs: LogEvent[] = [];
    const agent = await startAgent(config, { log: (e) => logs.push(e) });
    await vi.waitFor(() => expect(held.length).toBe(1), { timeout: 5_000 });
    expect(mis.requests.length).toBe(before + 1);

    await agent.close();
    const atClose = mis.requests.length;
    const logsAtClose = logs.length;
    // The fetch was abandoned by close itself (not answered later into a closed store).
    await vi.waitFor(() => expect(held[0]?.closedEarly()).toBe(true), { timeout: 2_000 });
    releaseAll();
    // Several refresh floors: a refresher still alive would have fetched again by now.
    await new Promise((r) => setTimeout(r, 800));
    expect(mis.requests.length).toBe(atClose);
    expect(trustErrors()).toBe(0);
    expect(logs.slice(logsAtClose).filter((e) => /trust bundle/.test(e.msg))).toEqual([]);
  });

  it("a DeviceDriver Configure without trust_bundle_url after one with it: the old fetch is aborted and the old URL never fetched again", async () => {
    const trustErrors = spyTrustErrors();
    const stateDir = await tempDir("margo-agent-close-sup-");
    const identityDir = await tempDir("margo-agent-close-id-");
    const sup = new AgentSupervisor(agentConfig(stateDir, identityDir), startAgent, () => {});
    const request = (trustBundleUrl?: string) => ({
      wfmUrl: "https://127.0.0.1:1",
      clientSvidChainPem: domain.client.certPem,
      privateKeyPem: domain.client.keyPem,
      trustBundle: { $case: "trustBundlePem" as const, value: domain.root.certPem },
      expectedWfmSpiffeId: WFM_ID,
      pollPeriodMs: 250,
      deviceId: "dev-1",
      ...(trustBundleUrl !== undefined ? { trustBundleUrl } : {}),
    });
    try {
      await sup.configure(request(bundleUrl()));
      await vi.waitFor(() => expect(held.length).toBe(1), { timeout: 5_000 });

      await sup.configure(request());
      const atConfigure = mis.requests.length;
      expect(sup.currentConfig().trust.bundleUrl).toBeUndefined();
      await vi.waitFor(() => expect(held[0]?.closedEarly()).toBe(true), { timeout: 2_000 });
      releaseAll();
      await new Promise((r) => setTimeout(r, 800));
      expect(mis.requests.length).toBe(atConfigure);
      expect(trustErrors()).toBe(0);
      expect(sup.state().lastErrors.filter((e) => e.kind.startsWith("trust-"))).toEqual([]);
    } finally {
      await sup.close();
    }
  });
});
