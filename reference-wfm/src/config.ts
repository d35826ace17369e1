import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Everything a WFM instance needs to start, persisted as `<dataDir>/wfm.json` by `margo-wfm init`
 * so that `serve` needs nothing but the folder. Ports 0 mean "any free port" (tests).
 */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface WfmConfig {
  dataDir: string;
  /** SPIFFE trust domain, e.g. "example.org" (no scheme, no path). */
  trustDomain: string;
  /** wfm-id segment of the WFM's SPIFFE ID: stable, operator-assigned (digest 5.1). */
  wfmId: string;
  /** The Management Interface (mTLS required). Port 443 by default (checklist item 1). */
  management: ListenAddress;
  /** Discovery and trust bundle endpoints (server TLS only, no client certificate). */
  trust: ListenAddress;
  /** gRPC: WorkloadManagement binding, admin and WfmDriver services (mTLS). */
  grpc: ListenAddress;
  /** Base URL of the trust listener as devices reach it; discovery's trustBundleUri uses it. */
  trustPublicUrl: string;
  /** DNS names and IP addresses placed as extra SANs on the WFM SVID (beside its one URI SAN). */
  hostnames: string[];
  /** Request bodies above this are refused with 413 before they are buffered. */
  maxBodyBytes: number;
  /** Per-client token bucket over all Management Interface requests. */
  rateLimit: { requestsPerSecond: number; burst: number };
  /** SVID lifetimes (digest 5.6: hours for services, weeks for intermittently connected devices). */
  wfmSvidLifetimeSeconds: number;
  clientSvidLifetimeSeconds: number;
  /** spiffe_refresh_hint of the served bundle. */
  bundleRefreshHintSeconds: number;
}

export const CONFIG_FILE = "wfm.json";

/** Defaults for everything but the identity, which the operator must choose. */
export function defaultConfig(
  dataDir: string,
  identity: { trustDomain: string; wfmId: string },
): WfmConfig {
  return {
    dataDir,
    trustDomain: identity.trustDomain,
    wfmId: identity.wfmId,
    management: { host: "127.0.0.1", port: 443 },
    trust: { host: "127.0.0.1", port: 8443 },
    grpc: { host: "127.0.0.1", port: 8444 },
    trustPublicUrl: "https://localhost:8443",
    hostnames: ["localhost", "127.0.0.1"],
    maxBodyBytes: 1024 * 1024,
    rateLimit: { requestsPerSecond: 50, burst: 100 },
    wfmSvidLifetimeSeconds: 24 * 3600,
    clientSvidLifetimeSeconds: 30 * 24 * 3600,
    bundleRefreshHintSeconds: 300,
  };
}

/** Read `<dataDir>/wfm.json`; the folder it was read from wins over a stale `dataDir` inside. */
export async function loadConfig(dataDir: string): Promise<WfmConfig> {
  const text = await readFile(join(dataDir, CONFIG_FILE), "utf8");
  return { ...(JSON.parse(text) as WfmConfig), dataDir };
}

export async function saveConfig(config: WfmConfig): Promise<void> {
  await writeFile(join(config.dataDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, {
    mode: 0o600,
  });
}
