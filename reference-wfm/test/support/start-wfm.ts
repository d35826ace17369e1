import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { admin } from "@margo/proto";
import {
  CONFIG_FILE,
  defaultConfig,
  loadConfig,
  type ManagementLimits,
  type WfmConfig,
} from "../../src/config.js";
import type { EdgeLog } from "../../src/http/log.js";
import { initWfm, type RunningWfm, type StartWfmOptions, startWfm } from "../../src/wfm.js";
import { MtlsClient, type MtlsClientOptions } from "./mtls-client.js";

/** Trust domain and wfm-id every test WFM uses. */
export const TEST_TRUST_DOMAIN = "example.org";
export const TEST_WFM_ID = "wfm-test";

/**
 * A config for tests: loopback, ports 0, generous rate limit (tests that exercise 429 lower it),
 * short-ish SVIDs. `overrides` is merged shallowly.
 */
export function testConfig(dataDir: string, overrides: Partial<WfmConfig> = {}): WfmConfig {
  const base = defaultConfig(dataDir, { trustDomain: TEST_TRUST_DOMAIN, wfmId: TEST_WFM_ID });
  return {
    ...base,
    management: { host: "127.0.0.1", port: 0 },
    trust: { host: "127.0.0.1", port: 0 },
    grpc: { host: "127.0.0.1", port: 0 },
    trustPublicUrl: "https://127.0.0.1",
    rateLimit: { requestsPerSecond: 10_000, burst: 10_000 },
    ...overrides,
  };
}

/** Management limits for tests: the defaults with some replaced (short timeouts, small caps). */
export function testLimits(overrides: Partial<ManagementLimits>): ManagementLimits {
  const base = defaultConfig("/unused", { trustDomain: TEST_TRUST_DOMAIN, wfmId: TEST_WFM_ID });
  return { ...base.managementLimits, ...overrides };
}

/** Make a fresh temp data dir, named so leftovers are recognisable. */
export function tempDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "margo-wfm-test-"));
}

/** initWfm unless the folder already holds a wfm.json; returns the config to start with. */
export async function ensureInitialised(config: WfmConfig): Promise<WfmConfig> {
  try {
    await access(join(config.dataDir, CONFIG_FILE));
    return await loadConfig(config.dataDir);
  } catch {
    const identity = await initWfm(config);
    identity.close();
    return config;
  }
}

export interface TestWfm extends RunningWfm {
  dataDir: string;
  /** Admit a client; returns its freshly minted credentials. */
  admit(clientId: string): Promise<admin.ClientCredentials>;
  /** An mTLS client for the Management Interface presenting `creds` (or no certificate). */
  client(creds: admin.ClientCredentials | undefined, opts?: Partial<MtlsClientOptions>): MtlsClient;
  /** close() and delete the data dir (unless `keepDataDir`). */
  dispose(opts?: { keepDataDir?: boolean }): Promise<void>;
}

export interface StartTestWfmOptions extends StartWfmOptions {
  /** Reuse a data dir (restart tests); a new temp dir otherwise. */
  dataDir?: string;
  config?: Partial<WfmConfig>;
  /** Collects edge logs instead of printing them. */
  log?: EdgeLog;
}

/**
 * Start a whole WFM in this process on a temp data dir, every port 0. gRPC is off unless asked
 * for, so REST tests stay fast.
 */
export async function startTestWfm(opts: StartTestWfmOptions = {}): Promise<TestWfm> {
  const dataDir = opts.dataDir ?? (await tempDataDir());
  const config = await ensureInitialised(testConfig(dataDir, opts.config));
  const wfm = await startWfm(config, {
    grpc: opts.grpc ?? false,
    log: opts.log ?? (() => undefined),
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.managementKeepAliveMs !== undefined
      ? { managementKeepAliveMs: opts.managementKeepAliveMs }
      : {}),
  });
  const clients: MtlsClient[] = [];
  return {
    ...wfm,
    dataDir,
    admit: async (clientId) => {
      const r = await wfm.core.addClient(clientId);
      if (!r.credentials) throw new Error(`addClient(${clientId}) returned no credentials`);
      return r.credentials;
    },
    client: (creds, o = {}) => {
      const c = new MtlsClient({
        port: wfm.managementPort,
        trustBundlePem: creds?.trustBundlePem ?? wfm.identity.serverTls().anchorsPem,
        expectedServerId: wfm.identity.wfmSpiffeId,
        ...(creds ? { client: creds } : {}),
        ...o,
      });
      clients.push(c);
      return c;
    },
    dispose: async (d = {}) => {
      for (const c of clients) c.close();
      await wfm.close();
      if (!d.keepDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
