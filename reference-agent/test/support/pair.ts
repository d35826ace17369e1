import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeDeploymentStatus } from "@margo/proto/wire";
import { openReadOnly } from "../../src/state/sqlite-store.js";
import { type AgentProcess, type AgentProcessOptions, startAgent } from "./agent-process.js";
import { cleanupDevices, waitUntil } from "./docker.js";
import { type SeenStatus, startWfm, type WfmDriver, type WfmProcess } from "./wfm-process.js";

/**
 * A real reference WFM and a real agent wired together as a vendor would: `margo-wfm client add`
 * writes the agent's identity folder, the agent's config points at the WFM's live ports. Each
 * acceptance file uses its own client and device ids so files can run in parallel.
 */
export interface Pair {
  wfm: WfmProcess;
  driver: WfmDriver;
  clientId: string;
  deviceId: string;
  identityDir: string;
  /** applicationId per fixture name published in setup. */
  apps: Record<string, string>;
  agent(): AgentProcess;
  startAgent(extra?: Partial<AgentProcessOptions>): Promise<AgentProcess>;
  /** Every report the WFM accepted for one deployment, in receipt order. */
  history(deploymentId: string): Promise<SeenStatus[]>;
  /**
   * The reports the agent marked delivered for one deployment, in seq (send) order, exactly as
   * POSTed: read from its state DB read-only (WAL lets this run beside a live agent).
   */
  deliveredReports(deploymentId: string): Array<{ seq: number; body: string }>;
  /** Outbox counts straight from the state DB: cheap enough to poll every few ms. */
  outboxStats(): { pending: number; delivered: number; deadLettered: number };
  /** Wait until the WFM's latest report for the deployment has `state`. */
  waitReported(deploymentId: string, state: string, timeoutMs?: number): Promise<SeenStatus>;
  dispose(): Promise<void>;
}

export async function startPair(opts: {
  clientId: string;
  deviceId: string;
  fixtures: string[];
  agent?: false | Partial<AgentProcessOptions>;
}): Promise<Pair> {
  const wfm = await startWfm();
  const identityDir = await mkdtemp(join(tmpdir(), `margo-agent-id-${opts.clientId}-`));
  await wfm.addClient(opts.clientId, identityDir);
  const driver = wfm.driver();
  const apps: Record<string, string> = {};
  for (const f of opts.fixtures) apps[f] = (await driver.publishFixture(f)).applicationId;
  let agent: AgentProcess | undefined;
  const pair: Pair = {
    wfm,
    driver,
    clientId: opts.clientId,
    deviceId: opts.deviceId,
    identityDir,
    apps,
    agent() {
      if (!agent) throw new Error("agent not started");
      return agent;
    },
    async startAgent(extra = {}) {
      agent = await startAgent({
        wfm: {
          managementUrl: wfm.managementUrl,
          grpcAddress: wfm.grpcAddress,
          bundleUrl: wfm.bundleUrl,
        },
        deviceId: opts.deviceId,
        identityDir,
        ...extra,
      });
      return agent;
    },
    history: (deploymentId) => driver.listStatuses({ deploymentId, includeHistory: true }),
    deliveredReports(deploymentId) {
      const store = openReadOnly(pair.agent().config.stateDir);
      try {
        return store
          .outboxDeliveredEntries(1_000)
          .filter((e) => e.deploymentId === deploymentId)
          .map((e) => ({ seq: e.seq, body: Buffer.from(e.body).toString("utf8") }));
      } finally {
        store.close();
      }
    },
    outboxStats() {
      const store = openReadOnly(pair.agent().config.stateDir);
      try {
        return store.outboxStats();
      } finally {
        store.close();
      }
    },
    waitReported: (deploymentId, state, timeoutMs = 30_000) =>
      waitUntil(
        `WFM to hold '${state}' for ${deploymentId}`,
        async () => {
          const [latest] = await driver.listStatuses({ deploymentId });
          return latest?.state === state ? latest : undefined;
        },
        { timeoutMs, intervalMs: 100 },
      ),
    async dispose() {
      await agent?.dispose().catch(() => undefined);
      await wfm.dispose().catch(() => undefined);
      await cleanupDevices([opts.deviceId]);
      await rm(identityDir, { recursive: true, force: true });
    },
  };
  if (opts.agent !== false) await pair.startAgent(opts.agent || {});
  return pair;
}

/**
 * The report history reduced to what must be exactly-once and ordered: one entry per distinct
 * consecutive deployment-level state. Also returns the reports that were exact repeats of the one
 * before (same state, same components): a resent report shows up there.
 */
export function summarise(history: SeenStatus[]): { states: string[]; repeats: SeenStatus[] } {
  const states: string[] = [];
  const repeats: SeenStatus[] = [];
  let prev: SeenStatus | undefined;
  for (const h of history) {
    if (states[states.length - 1] !== h.state) states.push(h.state);
    if (prev && sameReport(prev, h)) repeats.push(h);
    prev = h;
  }
  return { states, repeats };
}

/**
 * The WFM's history as the bytes the agent would have sent: the canonical encoding of each stored
 * report, in receipt order. Equal to `deliveredReports` exactly when the WFM holds every delivered
 * report once, unchanged, in the order the agent sent them.
 */
export function historyBodies(history: SeenStatus[]): string[] {
  return history.map((h) => Buffer.from(encodeDeploymentStatus(h.raw)).toString("utf8"));
}

function sameReport(a: SeenStatus, b: SeenStatus): boolean {
  return (
    a.state === b.state &&
    a.adoptedManifestVersion === b.adoptedManifestVersion &&
    JSON.stringify(a.components) === JSON.stringify(b.components)
  );
}
