import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Everything one agent process needs, persisted as `<stateDir>/agent.json` (or any file passed
 * with `--config`). The operator provisions identity, trust and WFM URL out of band (digest 5.7:
 * rc.3 has no enrollment protocol); this file is where that provisioning lands.
 */
export interface AgentConfig {
  /** SQLite state, extracted components, the copy of the identity the agent uses. */
  stateDir: string;
  /** The device id capabilities and statuses are reported under (a hosting device, no gateway). */
  deviceId: string;
  wfm: {
    /** Base URL of the Management Interface, e.g. https://127.0.0.1:443. Routing only (digest 5.3). */
    url: string;
    /**
     * host:port of the WFM's gRPC WorkloadManagement binding. When set and `watch` is true the
     * agent holds a WatchManifest stream beside its polling, so changes arrive in milliseconds.
     */
    grpcAddress?: string;
    watch: boolean;
  };
  /**
   * Folder with `svid.pem` (leaf first, then intermediates), `svid.key`, and the initial trust
   * bundle (`bundle.json` SPIFFE bundle, or `bundle.pem`) provisioned out of band: the agent never
   * trusts a server on first use (item 18), so it refuses to start without one.
   */
  identityDir: string;
  trust: {
    /**
     * https URL of the SPIFFE bundle to refresh from, or of a discovery document
     * (`/.well-known/margo`) naming it. Unset: the provisioned bundle is used until reconfigured.
     */
    bundleUrl?: string;
    discoveryUrl?: string;
    /**
     * SPIFFE ID the trust endpoint (MIS) must present. Unset: the WFM's ID derived from the own
     * SVID, which is what the reference WFM presents on its trust listener. Never "any SVID of the
     * domain": client SVIDs carry serverAuth too, so another device could otherwise serve a bundle
     * and replace the anchors. A WFM client ID (`.../client/...`) is refused.
     */
    serverSpiffeId?: string;
    /** Refresh period when the bundle carries no spiffe_refresh_hint (item 23). */
    refreshIntervalSeconds: number;
    /**
     * Floor of the refresh period and of retries, whatever the hint says (default 5): a hint of
     * 0 or 1 s must not become a busy loop against the MIS. A test run may lower it.
     */
    minRefreshSeconds?: number;
  };
  polling: {
    /** Polling rate of GET /api/v1/deployments (item 87). */
    periodMs: number;
    /** Each wait is spread by +- this fraction so a fleet restarted together does not poll in step. */
    jitterRatio: number;
    /** Polling interval period (item 87): hours of the day (UTC, "HH:MM") when polling happens; unset = always. */
    hours?: DailyWindow;
  };
  /** Downtime windows (UTC, daily): no requests, no retries, communication errors ignored (item 87). */
  downtime: DailyWindow[];
  compose: {
    enabled: boolean;
    /** Docker Engine socket, e.g. /var/run/docker.sock; any engine works (a test may point at a fresh one). */
    dockerSocket: string;
    /** Compose command; unset = the v2 plugin binary run directly, else `docker compose`, else `docker-compose` (v1). */
    command?: string[];
  };
  helm: {
    enabled: boolean;
    kubeconfig?: string;
    helmBinary: string;
  };
  /** OpenTelemetry collector of the device platform (items 30, 88-89). The agent ships none. */
  otel: {
    /** Reported as capabilities `otelCollector`; a hosting device must run one (item 88). */
    collector: boolean;
    /** Injected as HTTP_OTEL_EXPORTER_OTLP_ENDPOINT into every workload container (item 89). */
    httpEndpoint: string;
    grpcEndpoint?: string;
    certificate?: string;
    protocol?: "grpc" | "http/protobuf";
  };
  /** Identity fields of the capabilities document (items 25, 30). */
  device: {
    vendor: string;
    modelNumber: string;
    serialNumber: string;
    labels?: Record<string, string | number | boolean | string[] | number[]>;
  };
  /** Registries reached over plain HTTP (a loopback test registry); all others use HTTPS. */
  plainHttpRegistries: string[];
  /** How often the real workload state is compared with the desired one (drift repair). */
  driftCheckMs: number;
  /**
   * How many deployments are installed/removed at the same time. The engine, not the agent, is
   * the bottleneck of an install (pull, network create, container start), and independent
   * deployments need not wait for each other; the bound keeps a burst from overloading a small
   * device. Components inside one deployment always go strictly in listed order.
   */
  maxParallelDeployments: number;
  /** How often host facts are re-read to re-report changed capabilities (item 25). */
  capabilitiesCheckMs: number;
  /** DeviceDriver gRPC service (for the conformance suite); off when unset. Loopback only by default. */
  driver?: { host: string; port: number; tokenFile?: string };
}

/** A daily window in UTC; `end` before `start` wraps past midnight. */
export interface DailyWindow {
  start: string;
  end: string;
}

export const CONFIG_FILE = "agent.json";

/** ConfigError names the key that is wrong, so `margo-agent` can print it and exit 2. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = "ConfigError";
  }
}

/** Defaults for everything but the provisioned facts (WFM URL, device id, identity folder). */
export function defaultConfig(
  stateDir: string,
  required: { deviceId: string; wfmUrl: string; identityDir: string },
): AgentConfig {
  return {
    stateDir,
    deviceId: required.deviceId,
    wfm: { url: required.wfmUrl, watch: false },
    identityDir: required.identityDir,
    trust: { refreshIntervalSeconds: 300, minRefreshSeconds: 5 },
    polling: { periodMs: 15_000, jitterRatio: 0.1 },
    downtime: [],
    compose: { enabled: true, dockerSocket: "/var/run/docker.sock" },
    helm: { enabled: false, helmBinary: "helm" },
    otel: { collector: true, httpEndpoint: "http://127.0.0.1:4318" },
    device: {
      vendor: "margo-reference",
      modelNumber: "reference-agent",
      serialNumber: required.deviceId,
    },
    plainHttpRegistries: [],
    driftCheckMs: 5_000,
    maxParallelDeployments: 4,
    capabilitiesCheckMs: 60_000,
  };
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** Fill missing keys from the defaults and check what would otherwise fail late. */
export function normaliseConfig(raw: unknown): AgentConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("(root)", "must be an object");
  const r = raw as Partial<AgentConfig> & Record<string, unknown>;
  for (const key of ["stateDir", "deviceId", "identityDir"] as const) {
    if (typeof r[key] !== "string" || r[key] === "") throw new ConfigError(key, "required string");
  }
  if (typeof r.wfm?.url !== "string") throw new ConfigError("wfm.url", "required string");
  const base = defaultConfig(r.stateDir as string, {
    deviceId: r.deviceId as string,
    wfmUrl: r.wfm.url,
    identityDir: r.identityDir as string,
  });
  const c: AgentConfig = {
    ...base,
    ...r,
    wfm: { ...base.wfm, ...r.wfm },
    trust: { ...base.trust, ...r.trust },
    polling: { ...base.polling, ...r.polling },
    compose: { ...base.compose, ...r.compose },
    helm: { ...base.helm, ...r.helm },
    otel: { ...base.otel, ...r.otel },
    device: { ...base.device, ...r.device },
  } as AgentConfig;
  let url: URL;
  try {
    url = new URL(c.wfm.url);
  } catch {
    throw new ConfigError("wfm.url", `not a URL: ${c.wfm.url}`);
  }
  if (url.protocol !== "https:") throw new ConfigError("wfm.url", "must be https (mTLS, item 3)");
  for (const key of ["bundleUrl", "discoveryUrl"] as const) {
    const v = c.trust[key];
    if (v !== undefined && !v.startsWith("https://")) {
      throw new ConfigError(`trust.${key}`, "must be https (item 19)");
    }
  }
  const floor = c.trust.minRefreshSeconds;
  if (floor !== undefined && !(typeof floor === "number" && Number.isFinite(floor) && floor > 0)) {
    throw new ConfigError("trust.minRefreshSeconds", "a positive number of seconds");
  }
  const misId = c.trust.serverSpiffeId;
  if (misId !== undefined && (!misId.startsWith("spiffe://") || /\/client(\/|$)/.test(misId))) {
    throw new ConfigError("trust.serverSpiffeId", "a spiffe:// ID that is not a WFM client ID");
  }
  if (!(c.polling.periodMs >= 100)) throw new ConfigError("polling.periodMs", "at least 100");
  if (!(Number.isInteger(c.maxParallelDeployments) && c.maxParallelDeployments >= 1)) {
    throw new ConfigError("maxParallelDeployments", "an integer of at least 1");
  }
  if (!(c.polling.jitterRatio >= 0 && c.polling.jitterRatio < 1)) {
    throw new ConfigError("polling.jitterRatio", "in [0, 1)");
  }
  const windows: Array<[string, DailyWindow]> = c.downtime.map((w, i) => [`downtime[${i}]`, w]);
  if (c.polling.hours) windows.push(["polling.hours", c.polling.hours]);
  for (const [key, w] of windows) {
    if (!HHMM.test(w.start) || !HHMM.test(w.end))
      throw new ConfigError(key, "start/end as HH:MM (UTC)");
  }
  return c;
}

/** Read and normalise a config file; ConfigError for a missing file or bad JSON too. */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError("(file)", `cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError("(file)", `${file} is not JSON: ${(e as Error).message}`);
  }
  return normaliseConfig(raw);
}

/** Write `<stateDir>/agent.json` (mode 0600: it names the identity folder). */
export async function saveConfig(config: AgentConfig, file = join(config.stateDir, CONFIG_FILE)) {
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}
