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
  /**
   * How long an idle Management Interface connection stays open. Above the devices' poll period
   * (15 s usually), so a polling device keeps one mTLS connection instead of paying a handshake per
   * poll; Node's own default (5 s) would close it between polls.
   */
  managementKeepAliveSeconds: number;
  /** Connection limits of the Management Interface, so idle or trickling peers cannot pin sockets. */
  managementLimits: ManagementLimits;
  /** Connection limits of the gRPC listener (it terminates TLS itself, so it needs its own). */
  grpcLimits: GrpcLimits;
  /** Per-client token bucket over all Management Interface requests. */
  rateLimit: { requestsPerSecond: number; burst: number };
  /** SVID lifetimes (digest 5.6: hours for services, weeks for intermittently connected devices). */
  wfmSvidLifetimeSeconds: number;
  clientSvidLifetimeSeconds: number;
  /** spiffe_refresh_hint of the served bundle. */
  bundleRefreshHintSeconds: number;
}

/**
 * How long the Management Interface waits for each stage of a connection, and how many it holds.
 * Every stage is bounded so a peer that never authenticates, or sends a request a byte at a time,
 * frees its socket in seconds instead of pinning it for minutes.
 */
export interface ManagementLimits {
  /** Simultaneous TCP connections, authenticated or not; more are dropped at accept. */
  maxConnections: number;
  /** From TCP accept to a finished TLS handshake. */
  handshakeTimeoutMs: number;
  /** From the first byte of a request to the end of its headers. */
  headersTimeoutMs: number;
  /**
   * @deprecated Read only from an older wfm.json, as `bodyGraceMs` when that is absent. It was a
   * hard cap on the whole request, which cut valid slow uploads (a device on a satellite link)
   * with Node's raw 408; the body is now bounded by silence and average rate instead.
   */
  requestTimeoutMs?: number;
  /** Longest silence while a request body is being received. */
  bodyIdleTimeoutMs: number;
  /** How long a request body may take whatever its rate; only after it does the rate rule apply. */
  bodyGraceMs: number;
  /**
   * Least average body rate once the grace is over: by `bodyGraceMs + t` at least `t` seconds
   * of this many bytes must have arrived. It bounds how long a trickling peer holds a socket and
   * a buffer (1 MiB at 8 KiB/s: the grace plus 128 s) without cutting a slow but steady link.
   * 0 turns the rule off (silence still ends a body).
   */
  minBodyBytesPerSecond: number;
  /** Longest life of one connection whatever its SVID says (item 13). */
  maxConnectionAgeMs: number;
}

/**
 * How long the gRPC listener waits for each stage of a connection, and how many it holds. h2 has
 * no headers/body stages of its own to bound per connection, so the stages are the handshake, the
 * client's connection preface, and silence between calls.
 */
export interface GrpcLimits {
  /** Simultaneous TCP connections, authenticated or not; more are dropped at accept. */
  maxConnections: number;
  /** From TCP accept to a finished TLS handshake. */
  handshakeTimeoutMs: number;
  /** From the finished handshake to the client's first bytes (the h2 connection preface). */
  prefaceTimeoutMs: number;
  /** A connection with no call in flight for this long is sent GOAWAY and closed. */
  idleTimeoutMs: number;
  /** Longest life of one connection whatever its SVID says (item 13). */
  maxConnectionAgeMs: number;
}

export const CONFIG_FILE = "wfm.json";

/** Idle keep-alive of the Management Interface: a 15 s poll period with room for jitter. */
export const DEFAULT_KEEP_ALIVE_SECONDS = 65;

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
    managementKeepAliveSeconds: DEFAULT_KEEP_ALIVE_SECONDS,
    managementLimits: {
      // 10,000 devices (the scale) with room for reconnect overlap and operators.
      maxConnections: 20_000,
      handshakeTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 10_000,
      // The old whole-request bound, so whatever finished in time before still does.
      bodyGraceMs: 30_000,
      minBodyBytesPerSecond: 8 * 1024,
      maxConnectionAgeMs: 60 * 60 * 1000,
    },
    grpcLimits: {
      // The gRPC binding serves the same devices as REST, so the same connection budget.
      maxConnections: 20_000,
      handshakeTimeoutMs: 10_000,
      prefaceTimeoutMs: 10_000,
      // Above any poll period: a channel polling every 15 s keeps its connection.
      idleTimeoutMs: 5 * 60 * 1000,
      maxConnectionAgeMs: 60 * 60 * 1000,
    },
    rateLimit: { requestsPerSecond: 50, burst: 100 },
    wfmSvidLifetimeSeconds: 24 * 3600,
    clientSvidLifetimeSeconds: 30 * 24 * 3600,
    bundleRefreshHintSeconds: 300,
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Read `<dataDir>/wfm.json`; the folder it was read from wins over a stale `dataDir` inside.
 * Keys the file lacks (it may predate them) come from the defaults, one object level deep, so a
 * newer WFM still starts from an older data directory.
 */
export async function loadConfig(dataDir: string): Promise<WfmConfig> {
  const text = await readFile(join(dataDir, CONFIG_FILE), "utf8");
  const saved = JSON.parse(text) as Partial<WfmConfig>;
  const base: Record<string, unknown> = {
    ...defaultConfig(dataDir, { trustDomain: saved.trustDomain ?? "", wfmId: saved.wfmId ?? "" }),
  };
  for (const [key, value] of Object.entries(saved)) {
    const def = base[key];
    base[key] = isPlainObject(def) && isPlainObject(value) ? { ...def, ...value } : value;
  }
  const limits = saved.managementLimits as Partial<ManagementLimits> | undefined;
  if (limits?.requestTimeoutMs !== undefined && limits.bodyGraceMs === undefined) {
    // An operator who raised the old whole-request bound for slow links keeps that much time.
    (base.managementLimits as ManagementLimits).bodyGraceMs = limits.requestTimeoutMs;
  }
  return { ...(base as unknown as WfmConfig), dataDir };
}

export async function saveConfig(config: WfmConfig): Promise<void> {
  await writeFile(join(config.dataDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, {
    mode: 0o600,
  });
}
