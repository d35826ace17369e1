import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { AgentStore } from "../state/store.js";
import type { WfmApi } from "../wfm/api.js";

/** What one sync ended in (tests and logs; rejections are also recorded in the store). */
export type SyncOutcome =
  | { result: "unchanged" }
  | { result: "accepted"; manifestVersion: bigint; fetched: "bundle" | "deployments" | "none" }
  | { result: "rejected"; kind: string; message: string }
  | { result: "skipped"; reason: "downtime" | "polling-hours" | "retry-after" }
  | { result: "error"; message: string };

export interface ManifestSyncDeps {
  config: AgentConfig;
  api: WfmApi;
  store: AgentStore;
  log: AgentLog;
  /** Called after a manifest was accepted (kick the reconciler). */
  onAccepted: () => void;
  now?: () => number;
}

/**
 * The state-seeking half of the agent (digest 6.5): polls the manifest, verifies everything it
 * fetches, and hands an accepted manifest to the store in one transaction.
 */
export class ManifestSync {
  constructor(readonly deps: ManifestSyncDeps) {}
  /** Start polling (first sync immediately). */
  start(): void {}
  /** Sync now; during a sync, one more sync runs after it. */
  syncNow(): void {}
  /** One sync, awaited (tests). */
  async syncOnce(): Promise<SyncOutcome> {
    return { result: "unchanged" };
  }
  async stop(): Promise<void> {}
}
