import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { Provider } from "../providers/provider.js";
import type { AgentStore, DeploymentRecord } from "../state/store.js";

export interface ReconcilerDeps {
  config: AgentConfig;
  store: AgentStore;
  providers: Provider[];
  log: AgentLog;
  /** The status body for a record (statusBody of status-document.ts). */
  statusBody: (rec: DeploymentRecord) => Uint8Array;
  /** A report was enqueued (outbox.kick). */
  onReport: () => void;
  now?: () => number;
  /** Failed deployments are retried after base, doubling to cap (default 30 s .. 10 min). */
  retry?: { baseMs: number; capMs: number };
}

/**
 * Drives every stored deployment towards its desired state through the explicit state machine
 * of transitions.ts, one pass at a time.
 */
export class Reconciler {
  constructor(readonly deps: ReconcilerDeps) {}
  start(): void {}
  /** Run a pass soon; during a pass, one more pass runs after it. */
  kick(): void {}
  /** One pass, awaited (tests). */
  async runOnce(): Promise<void> {}
  /** Stop timers, abort in-flight provider calls and wait for them to settle. */
  async stop(): Promise<void> {}
}
