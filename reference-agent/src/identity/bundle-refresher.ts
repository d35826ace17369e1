import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { AgentStore } from "../state/store.js";
import type { FileAgentIdentity } from "./agent-identity.js";
import type { BundleRefreshOutcome } from "./types.js";

export interface BundleRefresherOptions {
  requestTimeoutMs?: number;
}

/** Keeps the trust bundle current from `config.trust` (items 17-24). */
export class BundleRefresher {
  constructor(
    readonly config: AgentConfig,
    readonly identity: FileAgentIdentity,
    readonly store: AgentStore,
    readonly log: AgentLog,
    readonly opts: BundleRefresherOptions = {},
  ) {}
  /** Schedule refreshes (first one now); no-op when no bundleUrl/discoveryUrl is configured. */
  start(): void {}
  stop(): void {}
  refreshNow(): Promise<BundleRefreshOutcome> {
    throw new Error("not implemented");
  }
  /** Epoch ms of the next scheduled refresh; undefined when stopped or not configured. */
  nextRefreshAt(): number | undefined {
    return undefined;
  }
}
