import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { saveConfig, type WfmConfig } from "./config.js";
import { createWfmCore, type RegistryFactory, type WfmCore } from "./core/wfm-core.js";
import { startGrpcServer } from "./grpc/server.js";
import type { GrpcServerOptions } from "./grpc/server-contract.js";
import type { EdgeLog } from "./http/log.js";
import { startManagementServer } from "./http/management-server.js";
import { RateLimiter } from "./http/rate-limit.js";
import { startTrustServer } from "./http/trust-server.js";
import { type FileIdentity, initIdentity, loadIdentity } from "./identity/authority.js";
import type { WfmIdentity } from "./identity/types.js";
import { openSqliteStore } from "./store/sqlite-store.js";
import type { WfmStore } from "./store/store.js";

/** The one SQLite file of a data directory. */
export const STORE_FILE = "wfm.sqlite";

/** What WfmDriver.Info reports; features name what the conformance suite may exercise. */
export const WFM_INFO: GrpcServerOptions["info"] = {
  vendor: "Margo reference implementation",
  product: "margo-reference-wfm",
  version: "0.0.0",
  margoVersion: "1.0.0-rc.3",
  features: ["gateway-children", "bundle", "content-encoding"],
};

export interface StartWfmOptions {
  /** Start the gRPC listener (default true). */
  grpc?: boolean;
  /** Edge log sink (default: JSON lines on stderr). */
  log?: EdgeLog;
  /** How the core reaches registries (tests may inject); defaults to the OCI client. */
  registry?: RegistryFactory;
  clock?: () => Date;
  /** Idle keep-alive timeout of the Management Interface; overrides `managementKeepAliveSeconds`. */
  managementKeepAliveMs?: number;
}

/** A running WFM: every part, so tests and the CLI can reach them, and one close(). */
export interface RunningWfm {
  config: WfmConfig;
  core: WfmCore;
  identity: WfmIdentity;
  store: WfmStore;
  managementPort: number;
  trustPort: number;
  /** undefined when started with `grpc: false`. */
  grpcPort: number | undefined;
  /** Stops listeners first (no request lands on a closed store), then the core and the store. */
  close(): Promise<void>;
}

/**
 * Create a data directory: `wfm.json`, the trust domain's CA and WFM SVID, and the empty store.
 * Fails if an identity already exists there (H1's initIdentity refuses re-init), so an operator
 * cannot silently replace a trust domain. Returns the identity so the caller can mint the
 * operator's credentials; the caller closes it (it owns the SVID-renewal timer).
 */
export async function initWfm(config: WfmConfig): Promise<FileIdentity> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const identity = await initIdentity(config);
  await saveConfig(config);
  const store = await openSqliteStore(join(config.dataDir, STORE_FILE));
  await store.close();
  return identity;
}

/**
 * `trustPublicUrl` with a port of 0 replaced by the trust listener's live port; any other URL
 * (a real port, a default port, a reverse proxy's address) is what devices use and stays as is.
 */
export function liveTrustUrl(configured: string, livePort: number): string {
  const url = new URL(configured);
  if (url.port !== "0") return configured;
  url.port = String(livePort);
  return url.toString().replace(/\/+$/, configured.endsWith("/") ? "/" : "");
}

/**
 * The composition root: store, identity, core and the three listeners (Management Interface,
 * MIS trust endpoints, gRPC). A failure halfway closes what was already started.
 */
export async function startWfm(config: WfmConfig, opts: StartWfmOptions = {}): Promise<RunningWfm> {
  const stack: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const f of stack.reverse()) await f().catch(() => undefined);
  };
  try {
    const store = await openSqliteStore(join(config.dataDir, STORE_FILE));
    stack.push(() => store.close());
    const identity = await loadIdentity(config);
    stack.push(async () => identity.close());
    const core = await createWfmCore({
      store,
      identity,
      ...(opts.registry ? { registry: opts.registry } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    stack.push(() => core.close());
    // One budget per client across REST and gRPC: switching binding must not double its rate.
    const rateLimiter = new RateLimiter(config.rateLimit.requestsPerSecond, config.rateLimit.burst);
    const management = await startManagementServer({
      core,
      identity,
      config,
      rateLimiter,
      ...(opts.log ? { log: opts.log } : {}),
      keepAliveTimeoutMs:
        opts.managementKeepAliveMs ?? Math.round(config.managementKeepAliveSeconds * 1000),
    });
    stack.push(() => management.close());
    const trust = await startTrustServer({
      identity,
      config,
      ...(opts.log ? { log: opts.log } : {}),
    });
    stack.push(() => trust.close());
    // A configured port 0 ("any free port") means nothing to a device: discovery names the live one.
    const publicUrl = liveTrustUrl(config.trustPublicUrl, trust.port);
    if (publicUrl !== config.trustPublicUrl) identity.setTrustPublicUrl(publicUrl);
    let grpcPort: number | undefined;
    if (opts.grpc ?? true) {
      const grpc = await startGrpcServer({
        core,
        identity,
        listen: config.grpc,
        info: WFM_INFO,
        maxBodyBytes: config.maxBodyBytes,
        rateLimit: rateLimiter,
        limits: config.grpcLimits,
        ...(opts.log ? { log: opts.log } : {}),
      });
      stack.push(() => grpc.close());
      grpcPort = grpc.port;
    }
    let closing: Promise<void> | undefined;
    return {
      config,
      core,
      identity,
      store,
      managementPort: management.port,
      trustPort: trust.port,
      grpcPort,
      close: () => {
        closing ??= unwind();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
