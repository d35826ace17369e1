import { createHash } from "node:crypto";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { Provider, ProviderProbe } from "../providers/provider.js";
import type { AgentStore } from "../state/store.js";
import type { WfmApi } from "../wfm/api.js";
import {
  buildCapabilities,
  type DeploymentType,
  encodeCapabilities,
} from "./capabilities-document.js";
import { type HostFacts, readHostFacts } from "./host-facts.js";

/** What the last report saw of each runtime (AgentView.runtimes, DeviceDriver Info). */
export interface RuntimeProbe extends ProviderProbe {
  type: string;
}

/**
 * Keeps the WFM's copy of this device's capabilities current (item 25): the first exchange after
 * every start is forced (the WFM may have lost or reset its copy), later ones are sent only when
 * the document's bytes changed. The digest of the last body the WFM accepted is kept in the store,
 * so a restart with unchanged facts still forces one PUT but the periodic check does not.
 */
export class CapabilitiesReporter {
  private lastProbes: RuntimeProbe[] = [];

  constructor(
    private readonly api: WfmApi,
    private readonly store: AgentStore,
    private readonly config: AgentConfig,
    private readonly providers: Provider[],
    private readonly log: AgentLog,
    /** Host facts source; tests replace it to simulate a change. */
    private readonly facts: () => HostFacts = () => readHostFacts(config.stateDir, log),
  ) {}

  /** Runtimes as the last `report`/`probe` found them. */
  runtimes(): RuntimeProbe[] {
    return this.lastProbes.map((p) => ({ ...p }));
  }

  /** Probe every provider now (each failure is "not available" with its reason, never a throw). */
  async probe(): Promise<RuntimeProbe[]> {
    this.lastProbes = await Promise.all(
      this.providers.map(async (p): Promise<RuntimeProbe> => {
        try {
          return { type: p.type, ...(await p.probe()) };
        } catch (e) {
          return { type: p.type, available: false, reason: (e as Error).message };
        }
      }),
    );
    return this.runtimes();
  }

  /** The exact body this device would report now. */
  async body(): Promise<Uint8Array> {
    const probes = await this.probe();
    const available = probes.filter((p) => p.available).map((p) => p.type as DeploymentType);
    if (available.length === 0) {
      this.log({
        level: "error",
        msg: "no deployment runtime is available; capabilities report no supportedDeploymentTypes",
        kind: "capabilities-no-runtime",
        runtimes: probes.map((p) => `${p.type}: ${p.reason ?? "unavailable"}`),
      });
    }
    return encodeCapabilities(buildCapabilities(this.config, this.facts(), available));
  }

  /**
   * PUT the capabilities when forced or changed since the WFM last accepted them. Resolves once
   * the WFM accepted (the digest is then stored); throws WfmRequestError otherwise and the caller
   * retries with its backoff.
   */
  async report(force: boolean): Promise<"sent" | "unchanged"> {
    const body = await this.body();
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const deviceId = this.config.deviceId;
    if (!force && this.store.readCapabilitiesDigest(deviceId) === digest) return "unchanged";
    const { status } = await this.api.putCapabilities(deviceId, body);
    this.store.saveCapabilitiesDigest(deviceId, digest);
    this.log({ level: "info", msg: "capabilities reported", status, digest, forced: force });
    return "sent";
  }
}
