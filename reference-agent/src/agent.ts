import { decodeApplicationDeployment } from "@margo/proto/wire";
import type {
  AgentView,
  DeploymentView,
  RunningAgent,
  StartAgent,
  StartAgentOptions,
} from "./agent-api.js";
import { CapabilitiesReporter, CapabilitiesRetry } from "./capabilities/reporter.js";
import { type ResendReason, watchForResend } from "./capabilities/resend-triggers.js";
import type { AgentConfig } from "./config.js";
import { FileAgentIdentity } from "./identity/agent-identity.js";
import { BundleRefresher } from "./identity/bundle-refresher.js";
import { type AgentLog, stderrLog } from "./log.js";
import { mutant } from "./mutants.js";
import { createProviders } from "./providers/index.js";
import type { Provider } from "./providers/provider.js";
import { Reconciler } from "./reconcile/reconciler.js";
import { SqliteAgentStore } from "./state/sqlite-store.js";
import { OutboxSender } from "./status/outbox-sender.js";
import { statusBody } from "./status/status-document.js";
import { ManifestSync } from "./sync/manifest-sync.js";
import { errorKey } from "./sync/retry-policy.js";
import { isDowntime, nextAllowedAt } from "./sync/schedule.js";
import type { WfmApi } from "./wfm/api.js";
import { RestWfmClient } from "./wfm/rest-client.js";
import type { ManifestWatch } from "./wfm/watch-client.js";

/** Wait `ms`, or less when `signal` aborts (loops must stop promptly on close/reset). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/**
 * The loops of one agent run, started together and stopped together, so `reset()` can stop
 * everything, wipe the state and start afresh with the same store, identity and transport.
 */
class Agent implements RunningAgent {
  private loops: AbortController | undefined;
  /** The capabilities loop of the current run; close() waits for it before the store closes. */
  private capabilitiesLoop: Promise<void> = Promise.resolve();
  private readonly reconciler: Reconciler;
  private readonly sync: ManifestSync;
  private readonly outbox: OutboxSender;
  private readonly unsubscribe: () => void;
  private closed = false;
  /** A forced capabilities PUT is owed (the WFM may have lost them); see watchForResend. */
  private resendOwed = false;
  /** Ends the capabilities loop's wait between checks early (a re-send became owed). */
  private wakeCapabilities: (() => void) | undefined;

  constructor(
    readonly config: AgentConfig,
    private readonly log: AgentLog,
    private readonly store: SqliteAgentStore,
    private readonly identity: FileAgentIdentity,
    private readonly api: WfmApi,
    private readonly refresher: BundleRefresher,
    private readonly providers: Provider[],
    private readonly capabilities: CapabilitiesReporter,
    private readonly watch: ManifestWatch | undefined,
  ) {
    this.outbox = new OutboxSender(store, api, log, {
      isDowntime: () => isDowntime(Date.now(), config.downtime),
    });
    this.reconciler = new Reconciler({
      config,
      store,
      providers,
      log,
      statusBody: (rec) => statusBody(rec, config.deviceId),
      onReport: () => this.outbox.kick(),
      onProbe: (type, available) => this.probeSeen(type, available),
    });
    this.sync = new ManifestSync({
      config,
      api,
      store,
      log,
      onAccepted: () => this.reconciler.kick(),
    });
    // New anchors or a renewed SVID: pooled connections were judged with the old ones.
    this.unsubscribe = identity.onChange(() => api.resetConnections());
  }

  /**
   * Start every loop. The reconciler starts at once from the stored state (a restart resumes
   * installs; it only enqueues reports). The outbox, the manifest sync and the watch start only
   * once the WFM accepted this run's capabilities or refused them for good (item 25, digest 5.7):
   * a status report must never reach the WFM before the capabilities of its device.
   */
  start(): void {
    const loops = new AbortController();
    this.loops = loops;
    this.resendOwed = false;
    this.refresher.start();
    this.reconciler.start();
    this.capabilitiesLoop = this.runCapabilities(loops.signal).catch((e: unknown) => {
      if (loops.signal.aborted) return;
      this.log({ level: "error", msg: "capabilities loop failed", error: String(e) });
    });
  }

  /**
   * Stop every loop and wait for in-flight work (provider calls and a trust bundle fetch are
   * aborted) to settle: the store is reset or closed right after, and an attempt finishing later
   * would write into it (a closed SQLite store throws and took the process down).
   */
  private async stopLoops(): Promise<void> {
    this.loops?.abort();
    this.watch?.stop();
    // The capabilities loop is not awaited here: a PUT in flight may take the whole request
    // timeout, and after the abort the loop starts nothing and reports nothing that matters.
    // close() waits for it once the transport is closed (which ends that PUT at once).
    await Promise.all([this.refresher.stop(), this.sync.stop(), this.reconciler.stop()]);
    await this.outbox.stop();
  }

  /**
   * Capabilities first (item 25), retried as `CapabilitiesRetry` decides until the WFM accepts
   * them or refuses them for good; then the outbox, the manifest sync and the watch; then a
   * re-check every `capabilitiesCheckMs` that PUTs only when the document changed, and a forced
   * PUT whenever the WFM may have lost them (after an outage, on `#device-not-found`).
   */
  private async runCapabilities(signal: AbortSignal): Promise<void> {
    if (mutant("capabilities-not-first")) await this.sync.syncOnce();
    await this.reportUntilSettled(signal);
    if (signal.aborted) return;
    // Whatever was owed is covered by the PUT that just settled.
    this.resendOwed = false;
    this.outbox.start();
    this.sync.start();
    this.watch?.start((etag) => {
      this.log({ level: "debug", msg: "watch: new manifest revision", etag });
      this.sync.syncNow();
    });
    while (!signal.aborted) {
      await this.waitForCheck(signal);
      if (signal.aborted) return;
      if (this.resendOwed) {
        this.resendOwed = false;
        await this.reportUntilSettled(signal);
      } else {
        await this.recheckCapabilities();
      }
    }
  }

  /**
   * A forced PUT, tried again until accepted or given up; never before Retry-After, never in
   * downtime or outside polling hours (errors there are ignored, item 87). A failure that repeats
   * is logged once.
   */
  private async reportUntilSettled(signal: AbortSignal): Promise<"accepted" | "gave-up"> {
    const retry = new CapabilitiesRetry();
    let lastKey: string | undefined;
    while (!signal.aborted) {
      const now = Date.now();
      const allowed = Math.max(nextAllowedAt(now, this.config), this.api.notBefore());
      if (allowed > now) {
        await sleep(allowed - now, signal);
        continue;
      }
      try {
        await this.capabilities.report(true);
        return "accepted";
      } catch (e) {
        if (signal.aborted) break;
        if (isDowntime(Date.now(), this.config.downtime)) continue;
        const decision = retry.decide(e);
        const key = errorKey(e);
        const giveUp = decision.action === "give-up";
        this.log({
          level: giveUp ? "error" : key === lastKey ? "debug" : "warn",
          msg: giveUp
            ? "capabilities refused; syncing without them until the document changes"
            : "capabilities not accepted",
          kind: "capabilities-failed",
          error: e instanceof Error ? e.message : String(e),
          why: decision.why,
        });
        lastKey = key;
        if (decision.action === "give-up") return "gave-up";
        await sleep(decision.delayMs, signal);
      }
    }
    return "gave-up";
  }

  /** Sleep until the next periodic check, or less when a forced re-send became owed. */
  private async waitForCheck(signal: AbortSignal): Promise<void> {
    if (this.resendOwed) return;
    const wake = new AbortController();
    const onAbort = () => wake.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    this.wakeCapabilities = () => wake.abort();
    try {
      await sleep(this.config.capabilitiesCheckMs, wake.signal);
    } finally {
      this.wakeCapabilities = undefined;
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** The WFM may have lost this device's capabilities: owe a forced PUT (item 25). */
  requestCapabilitiesResend(why: ResendReason): void {
    if (!this.loops || this.loops.signal.aborted) return;
    if (!this.resendOwed) {
      this.log({ level: "info", msg: "capabilities will be sent again", why });
    }
    this.resendOwed = true;
    this.wakeCapabilities?.();
  }

  private async recheckCapabilities(): Promise<void> {
    if (isDowntime(Date.now(), this.config.downtime)) return;
    try {
      await this.capabilities.report(false);
    } catch (e) {
      this.log({
        level: "warn",
        msg: "capabilities re-check failed",
        kind: "capabilities-failed",
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  /** The reconciler probed a runtime: if that differs from what was reported, re-report. */
  private probeSeen(type: string, available: boolean): void {
    const known = this.capabilities.runtimes().find((r) => r.type === type);
    if (known && known.available === available) return;
    if (!this.loops || this.loops.signal.aborted) return;
    void this.recheckCapabilities();
  }

  view(): AgentView {
    const sync = this.store.readSync();
    const trust = this.identity.trustState();
    const watching = this.watch?.up ?? false;
    return {
      deviceId: this.config.deviceId,
      clientSpiffeId: this.identity.clientSpiffeId,
      expectedWfmId: this.identity.expectedWfmId,
      ...(sync.manifestVersion !== undefined ? { manifestVersion: sync.manifestVersion } : {}),
      ...(sync.etag ? { etag: sync.etag } : {}),
      deployments: this.store.listDeployments().map((rec): DeploymentView => {
        const name = decodeApplicationDeployment(rec.yaml).value?.metadata?.name ?? "";
        return {
          deploymentId: rec.deploymentId,
          digest: rec.digest,
          deploymentName: name,
          desired: rec.desired,
          state: rec.state,
          adoptedManifestVersion: rec.adoptedManifestVersion,
          components: rec.components.map((c) => {
            const observed = this.reconciler.observed(rec.deploymentId, c.name);
            return {
              name: c.name,
              state: c.state,
              ...(c.error ? { error: { code: c.error.code, message: c.error.message } } : {}),
              ...(observed !== undefined ? { observed } : {}),
            };
          }),
          ...(rec.error ? { error: { ...rec.error } } : {}),
        };
      }),
      outbox: this.store.outboxStats(),
      lastErrors: this.store.recentErrors(20),
      trust: {
        ...(trust.sequence !== undefined ? { sequence: trust.sequence } : {}),
        anchors: trust.anchors,
        acceptedAt: trust.acceptedAt,
      },
      runtimes: this.capabilities.runtimes().map((r) => ({
        type: r.type,
        available: r.available,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
        ...(r.version !== undefined ? { version: r.version } : {}),
      })),
      watching,
    };
  }

  syncNow(): void {
    this.sync.syncNow();
    this.reconciler.kick();
  }

  /**
   * DeviceDriver Reset: stop, remove every workload any provider reports as ours, forget all
   * state, start again (capabilities first, then a sync that accepts any version).
   */
  async reset(): Promise<void> {
    if (this.closed) throw new Error("agent closed");
    await this.stopLoops();
    const abort = new AbortController();
    for (const provider of this.providers) {
      let refs: Awaited<ReturnType<Provider["listInstalled"]>> = [];
      try {
        refs = await provider.listInstalled();
      } catch (e) {
        this.log({
          level: "warn",
          msg: "reset: listInstalled failed",
          type: provider.type,
          error: String(e),
        });
      }
      for (const ref of refs) {
        const out = await provider.remove(ref, abort.signal).catch((e: unknown) => ({
          state: "failed" as const,
          error: { code: "REMOVE_FAILED" as const, message: String(e) },
        }));
        if (out.state === "failed") {
          this.log({
            level: "warn",
            msg: "reset: removal failed",
            deploymentId: ref.deploymentId,
            component: ref.componentName,
            error: out.error.message,
          });
        }
      }
    }
    this.store.reset();
    this.log({ level: "info", msg: "agent reset" });
    this.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopLoops();
    this.unsubscribe();
    // Closing the transport fails a capabilities PUT in flight; only then is the loop awaited,
    // so its digest write cannot land on a closed store.
    this.api.close();
    await this.capabilitiesLoop;
    this.store.close();
  }
}

/**
 * Compose the agent: store, identity, REST client, trust refresh, providers, capabilities,
 * outbox, reconciler, manifest sync and (only when configured) the watch stream, whose gRPC
 * module is loaded only then so an agent that polls does not pay for it.
 */
export const startAgent: StartAgent = (config, opts = {}) => startAgentWith(config, opts, {});

/** Test seams of `startAgentWith`; not part of the StartAgent contract. */
export interface AgentTestHooks {
  /** Wrap the REST transport every loop uses (tests record the order of requests). */
  wrapApi?: (api: WfmApi) => WfmApi;
}

/** `startAgent` with test seams (the in-process smoke test observes the request order). */
export async function startAgentWith(
  config: AgentConfig,
  opts: StartAgentOptions,
  hooks: AgentTestHooks,
): Promise<RunningAgent> {
  const log = opts.log ?? stderrLog;
  const store = SqliteAgentStore.open(config.stateDir);
  try {
    const identity = await FileAgentIdentity.open(config, store, log);
    const rest = new RestWfmClient(config.wfm.url, identity, { log });
    const transport = hooks.wrapApi ? hooks.wrapApi(rest) : rest;
    // The agent is built after the transport, so the trigger reaches it through this slot.
    let agentRef: Agent | undefined;
    const api = watchForResend(transport, (why) => agentRef?.requestCapabilitiesResend(why));
    const refresher = new BundleRefresher(config, identity, store, log);
    const providers = createProviders(config, log);
    const capabilities = new CapabilitiesReporter(api, store, config, providers, log);
    let watch: ManifestWatch | undefined;
    if (config.wfm.watch && config.wfm.grpcAddress) {
      const { ManifestWatch } = await import("./wfm/watch-client.js");
      // The schedule: the stream closes for downtime and outside polling hours (item 87).
      watch = new ManifestWatch(config.wfm.grpcAddress, identity, { log, schedule: config });
    }
    const agent = new Agent(
      config,
      log,
      store,
      identity,
      api,
      refresher,
      providers,
      capabilities,
      watch,
    );
    agentRef = agent;
    agent.start();
    log({
      level: "info",
      msg: "agent started",
      deviceId: config.deviceId,
      wfm: config.wfm.url,
      watch: watch !== undefined,
      providers: providers.map((p) => p.type),
    });
    return agent;
  } catch (e) {
    store.close();
    throw e;
  }
}
