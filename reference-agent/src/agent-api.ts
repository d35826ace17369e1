import type { AgentConfig } from "./config.js";
import type { AgentLog } from "./log.js";
import type { ErrorRecord, OutboxStats, WireState } from "./state/store.js";

/**
 * The running agent as its edges (CLI, DeviceDriver gRPC, tests) see it. `startAgent` in
 * `agent.ts` composes store, identity, transport, sync, reconciler, providers and outbox into one.
 */
export interface RunningAgent {
  readonly config: AgentConfig;
  /** What the agent holds now and why (`margo-agent status`, DeviceDriver GetState). */
  view(): AgentView;
  /** Sync now instead of waiting for the next poll (tests, `kill -USR1`). */
  syncNow(): void;
  /**
   * Remove every workload this agent installed, then forget manifest floor, deployments, outbox
   * and errors (DeviceDriver Reset). The agent keeps running with the same config.
   */
  reset(): Promise<void>;
  /** Stop loops, wait for an in-flight provider call to settle, close the store. */
  close(): Promise<void>;
}

export interface AgentView {
  deviceId: string;
  clientSpiffeId: string;
  expectedWfmId: string;
  manifestVersion?: bigint;
  etag?: string;
  deployments: DeploymentView[];
  outbox: OutboxStats;
  lastErrors: ErrorRecord[];
  trust: { sequence?: bigint; anchors: number; acceptedAt?: number };
  /** Deployment types whose runtime answered the last probe, with the reason for the others. */
  runtimes: Array<{ type: string; available: boolean; reason?: string; version?: string }>;
  /** Whether the WatchManifest stream is up (false = polling only). */
  watching: boolean;
}

export interface DeploymentView {
  deploymentId: string;
  digest: string;
  deploymentName: string;
  desired: "present" | "absent";
  state: WireState;
  adoptedManifestVersion: bigint;
  components: Array<{
    name: string;
    state: WireState;
    error?: { code: string; message: string };
    observed?: string;
  }>;
  error?: { code: string; source: string; message: string };
}

export interface StartAgentOptions {
  log?: AgentLog;
}

export type StartAgent = (config: AgentConfig, opts?: StartAgentOptions) => Promise<RunningAgent>;
