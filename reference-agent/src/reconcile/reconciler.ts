import type { ApplicationDeployment } from "@margo/proto";
import { decodeApplicationDeployment } from "@margo/proto/wire";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import { mutant } from "../mutants.js";
import type {
  ComponentRef,
  ComponentSpec,
  ObservedComponent,
  Provider,
  ProviderFailure,
} from "../providers/provider.js";
import type {
  AgentStore,
  ComponentRecord,
  DeploymentRecord,
  StatusErrorRecord,
  WireState,
} from "../state/store.js";
import { componentSpecs } from "./component-spec.js";
import { nextComponentState, nextDeploymentState, type ReconcileEvent } from "./transitions.js";

export interface ReconcilerDeps {
  config: AgentConfig;
  store: AgentStore;
  providers: Provider[];
  log: AgentLog;
  /** The status body for a record (statusBody of status-document.ts). */
  statusBody: (rec: DeploymentRecord) => Uint8Array;
  /** A report was enqueued (outbox.kick). */
  onReport: () => void;
  /** A runtime was probed before an install (capabilities re-check when it changed). */
  onProbe?: (type: string, available: boolean) => void;
  now?: () => number;
  /** Failed deployments are retried after base, doubling to cap (default 30 s .. 10 min). */
  retry?: { baseMs: number; capMs: number };
}

/** Reserved gateway codes (digest 7) this hosting device reports for misdirected deployments. */
const UNKNOWN_DEVICE = "101";
const NO_AUTONOMOUS_PLACEMENT = "103";

/** Retry state of one failed deployment revision; in memory, so a restart retries at once. */
interface RetryState {
  digest: string;
  attempts: number;
  nextAt: number;
}

/** What the WFM sees of a record; equal views mean nothing to report. */
function reportedView(rec: DeploymentRecord): string {
  return JSON.stringify({
    s: rec.state,
    e: rec.error ?? null,
    c: rec.components.map((c) => [c.name, c.state, c.error ?? null]),
  });
}

function cloneRecord(rec: DeploymentRecord): DeploymentRecord {
  return {
    ...rec,
    ...(rec.error ? { error: { ...rec.error } } : {}),
    components: rec.components.map((c) => ({
      ...c,
      ...(c.error ? { error: { ...c.error } } : {}),
    })),
  };
}

function withoutError<T extends { error?: StatusErrorRecord }>(x: T): T {
  const { error: _drop, ...rest } = x;
  return rest as T;
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "AbortError" || e.name === "AbortSignal");
}

/**
 * The store's copy of a deployment changed under a worker (sync accepted a new revision or an
 * undeploy while it was applying): what the worker would save is stale. Nothing is saved; the
 * deployment is worked on again from the store's copy.
 */
class Superseded extends Error {
  constructor(deploymentId: string) {
    super(`deployment ${deploymentId} changed in the store during reconcile`);
    this.name = "Superseded";
  }
}

/** One deployment being worked on: what it started from, and how to stop it early. */
interface Worker {
  digest: string;
  desired: DeploymentRecord["desired"];
  abort: AbortController;
}

/**
 * Drives every stored deployment towards its desired state through the explicit state machine
 * of transitions.ts. Independent deployments are worked on concurrently, at most
 * `maxParallelDeployments` at a time (the engine, not the agent, bounds an install); one
 * deployment is never worked on by two workers at once, and its components go strictly in listed
 * order. Every state change is saved together with its status report (one store transaction) and
 * only real changes are reported, so a worker resumed after a crash neither loses nor repeats a
 * report. The orphan sweep runs only while no deployment is being worked on.
 */
export class Reconciler {
  private readonly now: () => number;
  private readonly retryBase: number;
  private readonly retryCap: number;
  private readonly retries = new Map<string, RetryState>();
  /** Last observation per component (`deploymentId/component`), for status views. */
  private readonly seen = new Map<string, string>();
  private readonly active = new Map<string, Worker>();
  /** Deployments waiting for a worker, in the order they were asked for. */
  private readonly queue = new Set<string>();
  /** Deployments asked for again while a worker had them: one more run after it. */
  private readonly again = new Set<string>();
  private sweeping: Promise<void> | undefined;
  private sweepDue = false;
  private idleWaiters: Array<() => void> = [];
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private abort = new AbortController();

  constructor(readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
    this.retryBase = deps.retry?.baseMs ?? 30_000;
    this.retryCap = deps.retry?.capMs ?? 600_000;
  }

  /** Start from the stored state (a restart resumes installs while the WFM is down). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    this.timer = setInterval(() => this.kick(), this.deps.config.driftCheckMs);
    this.timer.unref();
    this.kick();
  }

  /**
   * Look at every deployment now: idle ones get a worker (within the bound), busy ones one more
   * run after their current one. A busy deployment whose revision or desire changed in the store
   * has its in-flight provider call aborted: that work is moot.
   */
  kick(): void {
    if (this.stopped) return;
    this.schedule();
  }

  /** What the runtime last showed of a component (`margo-agent status`). */
  observed(deploymentId: string, component: string): string | undefined {
    return this.seen.get(`${deploymentId}/${component}`);
  }

  /** Resolves when no deployment is being worked on or waiting, and no sweep runs (tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Work on every record (concurrently, bounded), then the orphan sweep; resolves when done. */
  async runOnce(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.schedule();
    await this.idle();
  }

  /** Stop timers, abort in-flight provider calls and wait for them to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = undefined;
    this.abort.abort();
    this.queue.clear();
    this.again.clear();
    for (const w of this.active.values()) w.abort.abort();
    await this.idle();
  }

  private isIdle(): boolean {
    return this.active.size === 0 && this.queue.size === 0 && this.sweeping === undefined;
  }

  private schedule(): void {
    if (this.abort.signal.aborted) return;
    for (const rec of this.deps.store.listDeployments()) {
      const w = this.active.get(rec.deploymentId);
      if (!w) {
        this.queue.add(rec.deploymentId);
        continue;
      }
      this.again.add(rec.deploymentId);
      if (w.digest !== rec.digest || w.desired !== rec.desired) {
        this.deps.log({
          level: "debug",
          msg: "deployment changed while being worked on; aborting that work",
          deploymentId: rec.deploymentId,
        });
        w.abort.abort();
      }
    }
    this.sweepDue = true;
    this.pump();
  }

  /** Hand waiting deployments to workers; when nothing is left, sweep orphans, then go idle. */
  private pump(): void {
    if (this.sweeping) return; // resumed when the sweep ends
    const max = Math.max(1, this.deps.config.maxParallelDeployments ?? 4);
    for (const id of this.queue) {
      if (this.active.size >= max || this.abort.signal.aborted) break;
      this.queue.delete(id);
      if (!this.active.has(id)) this.startWorker(id);
    }
    if (this.active.size > 0 || this.queue.size > 0) return;
    if (this.sweepDue && !this.abort.signal.aborted) {
      this.sweepDue = false;
      this.sweeping = this.sweepOrphans()
        .catch((e: unknown) => {
          this.deps.log({ level: "error", msg: "orphan sweep failed", error: String(e) });
        })
        .finally(() => {
          this.sweeping = undefined;
          this.pump();
        });
      return;
    }
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private startWorker(deploymentId: string): void {
    // Read now, not when the deployment was queued: sync may have moved it since.
    const rec = this.deps.store.getDeployment(deploymentId);
    if (!rec) return;
    const abort = new AbortController();
    this.active.set(deploymentId, { digest: rec.digest, desired: rec.desired, abort });
    this.deps.log({ level: "debug", msg: "reconcile deployment", deploymentId, state: rec.state });
    const run = async () => {
      try {
        await this.reconcile(rec, abort.signal);
      } catch (e) {
        if (e instanceof Superseded) {
          this.again.add(deploymentId);
          this.deps.log({ level: "debug", msg: e.message, deploymentId });
        } else if (!abort.signal.aborted) {
          // One broken record must not hold back any other deployment.
          this.deps.log({
            level: "error",
            msg: "reconcile failed",
            deploymentId,
            error: String(e),
          });
        }
      }
    };
    void run().finally(() => {
      this.active.delete(deploymentId);
      if (this.again.delete(deploymentId) && !this.abort.signal.aborted) {
        this.queue.add(deploymentId);
      }
      this.pump();
    });
  }

  /** Persist `next` (with its report when the WFM-visible part changed) and return it. */
  private save(prev: DeploymentRecord, next: DeploymentRecord): DeploymentRecord {
    const changed = reportedView(prev) !== reportedView(next);
    const same =
      !changed &&
      prev.appliedDigest === next.appliedDigest &&
      prev.components.every((c, i) => c.appliedSpecHash === next.components[i]?.appliedSpecHash);
    if (same) return prev;
    // Sync owns digest, YAML and desire; a worker's copy may be older than the store's (an
    // undeploy or new revision accepted while it applied). Writing it back would undo that.
    const current = this.deps.store.getDeployment(next.deploymentId);
    if (!current || current.digest !== prev.digest || current.desired !== prev.desired) {
      throw new Superseded(next.deploymentId);
    }
    next.updatedAt = this.now();
    const silenced = mutant("status-removed-not-reported") && next.state === "removed";
    const report = changed && !silenced ? this.deps.statusBody(next) : undefined;
    this.deps.store.saveDeployment(next, report);
    if (changed) {
      this.deps.log({
        level: "info",
        msg: "deployment state",
        deploymentId: next.deploymentId,
        state: next.state,
        components: next.components.map((c) => `${c.name}=${c.state}`).join(","),
      });
      this.deps.onReport();
    }
    return next;
  }

  private async reconcile(stored: DeploymentRecord, signal: AbortSignal): Promise<void> {
    const decoded = decodeApplicationDeployment(stored.yaml).value;
    if (stored.desired === "absent") return this.removeDeployment(stored, decoded, signal);
    if (!decoded) {
      // Sync verified and decoded these bytes before accepting them; unreadable now means the
      // codec changed under a stored record. Nothing can be installed from it.
      return this.failEarly(stored, stored, {
        code: "MANIFEST_INVALID",
        source: stored.deploymentId,
        message: "stored ApplicationDeployment no longer decodes",
      });
    }
    const specs = componentSpecs(stored.deploymentId, decoded, this.deps.config);
    const rec = this.aligned(stored, specs);
    const target = decoded.metadata?.deviceId ?? "";
    const own = this.deps.config.deviceId;
    if (target.endsWith("/*")) {
      // Item 57: `gw/*` asks the device to place the workload on a child; a hosting device has
      // no children to choose from.
      return this.failEarly(stored, rec, {
        code: NO_AUTONOMOUS_PLACEMENT,
        source: own,
        message: `autonomous placement (${target}) is not supported by this device`,
      });
    }
    if (target !== own) {
      return this.failEarly(stored, rec, {
        code: UNKNOWN_DEVICE,
        source: own,
        message: `deployment targets device ${JSON.stringify(target)}, this device is ${JSON.stringify(own)}`,
      });
    }
    const type = decoded.spec?.deploymentProfile?.type ?? "";
    const provider = this.deps.providers.find((p) => p.type === type);
    const name = decoded.metadata?.name || rec.deploymentId;
    if (!provider) {
      return this.failEarly(stored, rec, {
        code: "RUNTIME_UNAVAILABLE",
        source: name,
        message: `no runtime for deployment type ${JSON.stringify(type)} on this device`,
      });
    }
    const steady = rec.state === "installed" && rec.appliedDigest === rec.digest;
    if (!steady && !this.retryDue(rec)) return;

    // Which components must be (re-)applied: everything not installed with this spec, and
    // anything the runtime says is not running as we left it (drift).
    const needed: number[] = [];
    const evidence: string[] = [];
    for (const [i, spec] of specs.entries()) {
      const c = rec.components[i] as ComponentRecord;
      if (c.state === "installed" && c.appliedSpecHash === spec.specHash) {
        const seen = await this.observe(provider, spec);
        if (signal.aborted) return;
        if (this.healthy(seen, spec)) continue;
        evidence.push(`${spec.componentName}: ${seen.health} ${seen.detail}`);
      }
      needed.push(i);
    }
    if (steady && needed.length === 0) return;

    if (!steady) {
      const probe = await provider.probe().catch((e: unknown) => ({
        available: false,
        reason: String(e),
      }));
      if (signal.aborted) return;
      this.deps.log({ level: "debug", msg: "runtime probed", type, available: probe.available });
      this.deps.onProbe?.(type, probe.available);
      if (!probe.available) {
        this.deps.log({
          level: "warn",
          msg: "runtime unavailable",
          kind: "runtime-unavailable",
          deploymentId: rec.deploymentId,
          type,
          reason: probe.reason,
        });
        this.scheduleRetry(rec);
        return this.failEarly(stored, rec, {
          code: "RUNTIME_UNAVAILABLE",
          source: name,
          message: `${type} runtime unavailable: ${probe.reason ?? "probe failed"}`,
        });
      }
    } else {
      this.deps.log({
        level: "warn",
        msg: "drift detected, repairing",
        kind: "drift",
        deploymentId: rec.deploymentId,
        evidence: evidence.join("; "),
      });
    }

    const depEvent: ReconcileEvent = steady
      ? "drift"
      : rec.state === "failed"
        ? "retry"
        : "start-install";
    // `saved` is what the store (and so the WFM) has; `cur` may run ahead of it by one
    // "component installed", which is saved together with the next component's "installing" so
    // every report is consistent with precedence and none is spent on an intermediate step. A
    // crash in between re-applies that component (apply is idempotent).
    let saved = stored;
    let cur = this.resetFailed(rec, needed);
    for (const [k, i] of (mutant("components-reversed")
      ? [...needed].reverse()
      : needed
    ).entries()) {
      const spec = specs[i] as ComponentSpec;
      const next = cloneRecord(cur);
      const comp = next.components[i] as ComponentRecord;
      const compEvent: ReconcileEvent =
        steady && comp.state === "installed" ? "drift" : "start-install";
      comp.state = nextComponentState(comp.state, compEvent);
      delete comp.error;
      next.state = nextDeploymentState(next.state, k === 0 ? depEvent : "start-install");
      if (k === 0) delete next.error;
      saved = cur = this.save(saved, next);

      let failure: ProviderFailure | undefined;
      try {
        const outcome = await provider.apply(spec, signal);
        if (outcome.state === "failed") failure = outcome.error;
      } catch (e) {
        if (signal.aborted || isAbort(e)) return; // resumed from the stored state next start
        failure = { code: "APPLY_FAILED", message: e instanceof Error ? e.message : String(e) };
      }
      const after = cloneRecord(cur);
      const done = after.components[i] as ComponentRecord;
      if (failure) {
        const error = { code: failure.code, source: spec.componentName, message: failure.message };
        done.state = nextComponentState(done.state, "component-failed");
        done.error = error;
        after.state = nextDeploymentState(after.state, "component-failed");
        after.error = error;
        this.deps.log({
          level: "error",
          msg: "component failed",
          kind: "component-failed",
          deploymentId: rec.deploymentId,
          component: spec.componentName,
          code: failure.code,
          message: failure.message,
        });
        this.save(saved, after);
        this.scheduleRetry(after);
        return;
      }
      done.state = nextComponentState(done.state, "component-installed");
      done.appliedSpecHash = spec.specHash;
      after.state = nextDeploymentState(after.state, "component-installed");
      cur = after;
      if (k === needed.length - 1) {
        after.state = nextDeploymentState(after.state, "all-installed");
        after.appliedDigest = after.digest;
        delete after.error;
        this.retries.delete(after.deploymentId);
        saved = cur = this.save(saved, after);
      }
    }
    if (needed.length === 0) {
      // Every component already runs this spec (e.g. only labels changed): the revision is
      // installed without touching the runtime.
      const after = cloneRecord(rec);
      after.state = nextDeploymentState(
        nextDeploymentState(after.state, depEvent),
        "all-installed",
      );
      after.appliedDigest = after.digest;
      delete after.error;
      this.retries.delete(after.deploymentId);
      this.save(stored, after);
    }
  }

  /**
   * The record with exactly one component entry per component of its revision (item 68), by
   * name, carrying over what is known; a deployment that came back mid-removal starts over.
   */
  private aligned(stored: DeploymentRecord, specs: ComponentSpec[]): DeploymentRecord {
    const rec = cloneRecord(stored);
    const back = rec.state === "removing" || rec.state === "removed";
    if (back) rec.state = nextDeploymentState(rec.state, "accepted");
    const old = new Map(stored.components.map((c) => [c.name, c]));
    rec.components = specs.map((s) => {
      const c = old.get(s.componentName);
      if (!c) return { name: s.componentName, state: "pending" as WireState };
      const copy = { ...c };
      if (copy.state === "removing" || copy.state === "removed") {
        copy.state = nextComponentState(copy.state, "accepted");
      }
      return copy;
    });
    return rec;
  }

  /**
   * A retried revision lists its failed components as pending until their turn, so the first
   * report of the retry is "installing", not a failure left over (item 69). Not saved on its own:
   * the first save of the install loop carries it with a component `installing`.
   */
  private resetFailed(rec: DeploymentRecord, needed: number[]): DeploymentRecord {
    const next = cloneRecord(rec);
    for (const i of needed) {
      const c = next.components[i] as ComponentRecord;
      if (c.state === "failed") {
        c.state = nextComponentState(c.state, "retry");
        delete c.error;
      }
    }
    return next;
  }

  /**
   * Fail a deployment before any component was touched (wrong device, no runtime): every
   * component failed too, so the overall state equals the most severe component state (item 69).
   */
  private failEarly(
    stored: DeploymentRecord,
    rec: DeploymentRecord,
    error: StatusErrorRecord,
  ): void {
    const next = cloneRecord(rec);
    next.components = next.components.map((c) => {
      // An installed component first leaves installed (the table has no installed -> failed).
      const from = c.state === "installed" ? nextComponentState(c.state, "start-install") : c.state;
      return { ...withoutError(c), state: nextComponentState(from, "component-failed") };
    });
    const from =
      next.state === "installed" ? nextDeploymentState(next.state, "start-install") : next.state;
    next.state = nextDeploymentState(from, "component-failed");
    next.error = error;
    this.save(stored, next);
  }

  private async observe(provider: Provider, ref: ComponentRef): Promise<ObservedComponent> {
    let seen: ObservedComponent;
    try {
      seen = await provider.observe(ref);
    } catch (e) {
      // Not "absent": an engine that cannot be asked is not evidence that the workload is gone,
      // and re-applying against it would only fail.
      seen = { health: "running", detail: `observe failed: ${String(e)}` };
    }
    this.seen.set(`${ref.deploymentId}/${ref.componentName}`, `${seen.health}: ${seen.detail}`);
    return seen;
  }

  /** Running (or still starting) with our spec; a foreign specHash is drift (someone else's config). */
  private healthy(seen: ObservedComponent, spec: ComponentSpec): boolean {
    if (seen.health !== "running" && seen.health !== "starting") return false;
    return seen.specHash === undefined || seen.specHash === spec.specHash;
  }

  /** True when a failed revision may be tried again now (others: always). */
  private retryDue(rec: DeploymentRecord): boolean {
    if (rec.state !== "failed") return true;
    const r = this.retries.get(rec.deploymentId);
    return r === undefined || r.digest !== rec.digest || this.now() >= r.nextAt;
  }

  /** Back off 30 s doubling to 10 min per revision, and wake up when the wait is over. */
  private scheduleRetry(rec: DeploymentRecord): void {
    const prev = this.retries.get(rec.deploymentId);
    const attempts = prev && prev.digest === rec.digest ? prev.attempts + 1 : 1;
    const delay = Math.min(this.retryCap, this.retryBase * 2 ** (attempts - 1));
    this.retries.set(rec.deploymentId, {
      digest: rec.digest,
      attempts,
      nextAt: this.now() + delay,
    });
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const soonest = Math.min(...[...this.retries.values()].map((r) => r.nextAt));
    this.retryTimer = setTimeout(() => this.kick(), Math.max(0, soonest - this.now()));
    this.retryTimer.unref();
  }

  /**
   * A deployment that left the manifest (item 55, the only deletion signal): removing, its
   * components in reverse order, removed, then forgotten.
   */
  private async removeDeployment(
    stored: DeploymentRecord,
    decoded: ApplicationDeployment | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    if (stored.state === "removed") {
      // Crash between the removed report and forgetting: the report is already in the outbox.
      this.deps.store.forgetDeployment(stored.deploymentId);
      this.retries.delete(stored.deploymentId);
      return;
    }
    if (stored.state === "failed" && !this.retryDue(stored)) return;
    const specs = decoded ? componentSpecs(stored.deploymentId, decoded, this.deps.config) : [];
    const type = decoded?.spec?.deploymentProfile?.type ?? "";
    const provider = this.deps.providers.find((p) => p.type === type);
    let rec = cloneRecord(stored);
    if (decoded) {
      const old = new Map(stored.components.map((c) => [c.name, c]));
      rec.components = specs.map(
        (s) => old.get(s.componentName) ?? { name: s.componentName, state: "pending" as WireState },
      );
    }
    // Start of removal: every component not yet removed is removing.
    const start = cloneRecord(rec);
    start.state = nextDeploymentState(start.state, "removal-requested");
    delete start.error;
    for (const c of start.components) {
      if (c.state !== "removed") {
        c.state = nextComponentState(c.state, "removal-requested");
        delete c.error;
      }
    }
    if (start.components.every((c) => c.state === "removed")) {
      start.state = nextDeploymentState(start.state, "removed");
    }
    rec = this.save(stored, start);
    for (let i = rec.components.length - 1; i >= 0; i--) {
      const comp = rec.components[i] as ComponentRecord;
      if (comp.state === "removed") continue;
      const spec = specs[i] as ComponentSpec;
      let failure: ProviderFailure | undefined;
      if (provider && !mutant("no-removal")) {
        try {
          const outcome = await provider.remove(spec, signal);
          if (outcome.state === "failed") failure = outcome.error;
        } catch (e) {
          if (signal.aborted || isAbort(e)) return;
          failure = { code: "REMOVE_FAILED", message: e instanceof Error ? e.message : String(e) };
        }
      }
      // Without a provider for the type nothing of it can have been started here.
      const next = cloneRecord(rec);
      const c = next.components[i] as ComponentRecord;
      if (failure) {
        const error = {
          code: "REMOVE_FAILED",
          source: spec.componentName,
          message: failure.message,
        };
        c.state = nextComponentState(c.state, "remove-failed");
        c.error = error;
        next.state = nextDeploymentState(next.state, "remove-failed");
        next.error = error;
        this.deps.log({
          level: "error",
          msg: "component removal failed",
          kind: "remove-failed",
          deploymentId: rec.deploymentId,
          component: spec.componentName,
          message: failure.message,
        });
        this.save(rec, next);
        this.scheduleRetry(next);
        return;
      }
      c.state = nextComponentState(c.state, "removed");
      delete c.appliedSpecHash;
      if (next.components.every((x) => x.state === "removed")) {
        next.state = nextDeploymentState(next.state, "removed");
      }
      rec = this.save(rec, next);
    }
    if (rec.state === "removed") {
      this.deps.store.forgetDeployment(rec.deploymentId);
      this.retries.delete(rec.deploymentId);
    }
  }

  /**
   * Remove what a provider reports installed by this agent but no record claims: a deployment
   * forgotten by a reset or a crash, or a component dropped from an installed revision. Silent
   * to the WFM: nothing it knows about changes state.
   */
  private async sweepOrphans(): Promise<void> {
    if (mutant("no-removal")) return;
    for (const provider of this.deps.providers) {
      let installed: ComponentRef[];
      try {
        installed = await provider.listInstalled();
      } catch (e) {
        this.deps.log({
          level: "debug",
          msg: "listInstalled failed",
          type: provider.type,
          error: String(e),
        });
        continue;
      }
      for (const ref of installed) {
        if (this.stopped && this.abort.signal.aborted) return;
        const rec = this.deps.store.getDeployment(ref.deploymentId);
        const orphan =
          !rec ||
          (rec.desired === "present" &&
            rec.state === "installed" &&
            !rec.components.some((c) => c.name === ref.componentName));
        if (!orphan) continue;
        this.deps.log({
          level: "info",
          msg: "removing orphan component",
          deploymentId: ref.deploymentId,
          component: ref.componentName,
        });
        try {
          await provider.remove(ref, this.abort.signal);
        } catch (e) {
          if (this.abort.signal.aborted) return;
          this.deps.log({ level: "warn", msg: "orphan removal failed", error: String(e) });
        }
      }
    }
  }
}
