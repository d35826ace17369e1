import { createHash } from "node:crypto";
import type { DeploymentManifestRef, UnsignedAppStateManifest } from "@margo/proto";
import { decodeApplicationDeployment, decodeStateManifest } from "@margo/proto/wire";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import { mutant } from "../mutants.js";
import { type AcceptedDeployment, type AgentStore, StoreConflictError } from "../state/store.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import { jittered } from "../wfm/backoff.js";
import { errorKey, RetryPolicy } from "./retry-policy.js";
import { isDowntime, nextAllowedAt, pollingAllowed } from "./schedule.js";

/** What one sync ended in (tests and logs; rejections are also recorded in the store). */
export type SyncOutcome =
  | { result: "unchanged" }
  | { result: "accepted"; manifestVersion: bigint; fetched: "bundle" | "deployments" | "none" }
  | {
      result: "rejected";
      kind: SyncRejection;
      message: string;
      /** The WFM answered 304 to the ETag of a manifest refused before: the verdict stands. */
      repeated?: true;
    }
  | { result: "skipped"; reason: "downtime" | "polling-hours" | "retry-after" }
  | {
      result: "error";
      message: string;
      retryAt?: number;
      /** Error spacing before the next try; absent: not retried early, the next regular poll. */
      retryInMs?: number;
    };

/** Why a manifest was refused; the same string is recorded in the store and logged as `kind`. */
export type SyncRejection =
  | "manifest-invalid"
  | "unsupported-digest-algorithm"
  | "manifest-version-regressed"
  | "digest-mismatch"
  | "artifact-not-found"
  | "wfm-identity-mismatch";

export interface ManifestSyncDeps {
  config: AgentConfig;
  api: WfmApi;
  store: AgentStore;
  log: AgentLog;
  /** Called after a manifest was accepted (kick the reconciler). */
  onAccepted: () => void;
  now?: () => number;
  random?: () => number;
  /**
   * Exponential spacing after retryable failures (default 1 s doubling to the poll period, at
   * least 60 s); `fixedMs` is the constant of a `fixed` strategy that names no delay.
   */
  backoff?: { baseMs: number; capMs: number; fixedMs?: number };
}

/** A sync step refused the manifest: abort the whole update, record `kind`. */
class Rejected extends Error {
  constructor(
    readonly kind: SyncRejection,
    message: string,
  ) {
    super(message);
    this.name = "Rejected";
  }
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/**
 * The state-seeking half of the agent (digest 6.5): polls the manifest with If-None-Match,
 * refuses a version that is not above the stored floor, fetches only what changed (the bundle when
 * it moves fewer bytes), verifies every digest over the exact bytes, and hands the manifest to the
 * store in one transaction. Any failure leaves store and workloads as they were.
 */
export class ManifestSync {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly retry: RetryPolicy;
  /** The last error logged, so a failure that persists poll after poll is logged once. */
  private lastErrorKey: string | undefined;
  /**
   * The last refused manifest's ETag and verdict (memory only): sent as If-None-Match so an
   * unchanged bad manifest costs a 304 and records nothing new; a new ETag is judged afresh.
   */
  private refused:
    | { etag: string; outcome: Extract<SyncOutcome, { result: "rejected" }> }
    | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private last: SyncOutcome | undefined;

  constructor(readonly deps: ManifestSyncDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    const period = deps.config.polling.periodMs;
    this.retry = new RetryPolicy({
      baseMs: deps.backoff?.baseMs ?? 1_000,
      capMs: deps.backoff?.capMs ?? Math.max(period, 60_000),
      fixedMs: deps.backoff?.fixedMs ?? 5_000,
      random: this.random,
      now: this.now,
    });
  }

  /** The outcome of the most recent sync (status views). */
  get lastOutcome(): SyncOutcome | undefined {
    return this.last;
  }

  /** Start polling (first sync immediately). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // A start after reset() syncs against a wiped floor: an old verdict may no longer hold.
    this.refused = undefined;
    this.lastErrorKey = undefined;
    this.syncNow();
  }

  /** Sync now; during a sync, one more sync runs after it. */
  syncNow(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    let outcome: SyncOutcome;
    do {
      this.again = false;
      outcome = await this.syncOnce();
    } while (this.again && !this.stopped);
    if (!this.stopped) this.schedule(outcome);
  }

  /**
   * Next poll: the period with jitter, the error spacing after a retryable failure, never before
   * Retry-After or the end of downtime / outside polling hours.
   */
  private schedule(outcome: SyncOutcome): void {
    const now = this.now();
    let at: number;
    if (outcome.result === "error" && outcome.retryInMs !== undefined) {
      at = now + outcome.retryInMs;
    } else {
      at =
        now +
        jittered(
          this.deps.config.polling.periodMs,
          this.deps.config.polling.jitterRatio,
          this.random,
        );
    }
    at = Math.max(at, this.deps.api.notBefore(), nextAllowedAt(at, this.deps.config));
    this.timer = setTimeout(() => this.syncNow(), Math.max(0, at - now));
    this.timer.unref();
  }

  /** One sync, awaited (tests and the loop). Never throws. */
  async syncOnce(): Promise<SyncOutcome> {
    this.last = await this.attempt();
    if (this.last.result !== "error" && this.last.result !== "skipped") this.answered();
    return this.last;
  }

  private async attempt(): Promise<SyncOutcome> {
    const { config, api, store, log } = this.deps;
    const now = this.now();
    if (isDowntime(now, config.downtime)) return { result: "skipped", reason: "downtime" };
    if (!pollingAllowed(now, config)) return { result: "skipped", reason: "polling-hours" };
    if (api.notBefore() > now) return { result: "skipped", reason: "retry-after" };
    const floor = store.readSync();
    const refused = this.refused;
    let etag = "";
    try {
      const res = await api.getManifest(refused?.etag ?? (floor.etag || undefined));
      log({ level: "debug", msg: "manifest answered", status: res.status, ms: this.now() - now });
      if (res.status === 304) {
        if (!refused) return { result: "unchanged" };
        log({ level: "debug", msg: "refused manifest unchanged", kind: refused.outcome.kind });
        return { ...refused.outcome, repeated: true };
      }
      this.refused = undefined;
      // A WFM that ignores If-None-Match sends the accepted manifest again: not a regression.
      if (sameBytes(floor.manifestBody, res.body)) return { result: "unchanged" };
      etag = res.etag ?? "";
      return await this.adopt(
        res.body,
        etag,
        mutant("rollback-accepted") ? undefined : floor.manifestVersion,
      );
    } catch (e) {
      if (e instanceof Rejected) {
        // Item 51: a rollback attempt is a security event, the rest are faults of the WFM.
        const level = e.kind === "manifest-version-regressed" ? "warn" : "error";
        store.recordError(e.kind, e.message);
        log({
          level,
          msg: "manifest rejected; store and workloads unchanged",
          kind: e.kind,
          detail: e.message,
          ...(e.kind === "manifest-version-regressed" ? { security: true } : {}),
        });
        const outcome = { result: "rejected" as const, kind: e.kind, message: e.message };
        // A missing artifact is about the WFM's blob store, not these bytes: judged again.
        if (etag && e.kind !== "artifact-not-found") this.refused = { etag, outcome };
        return outcome;
      }
      const message = e instanceof Error ? e.message : String(e);
      // Item 87: during downtime errors are ignored (a sync that straddled its start).
      if (isDowntime(this.now(), config.downtime)) return { result: "skipped", reason: "downtime" };
      const decision = this.retry.decide(e);
      const retryAt = e instanceof WfmRequestError ? e.details.retryAt : undefined;
      const deferred = e instanceof WfmRequestError && e.kind === "deferred";
      if (!deferred) this.logFailure(e, message, decision.action === "retry");
      return {
        result: "error",
        message,
        ...(retryAt !== undefined ? { retryAt } : {}),
        ...(decision.action === "retry" ? { retryInMs: decision.delayMs } : {}),
      };
    }
  }

  /** A sync went through (whatever its verdict): error spacing and log-once memory start over. */
  private answered(): void {
    this.retry.reset();
    this.lastErrorKey = undefined;
  }

  /**
   * A failure is logged (and an identity failure recorded) when it differs from the previous one;
   * the same failure poll after poll goes to debug, so a refusing WFM does not flood the log.
   */
  private logFailure(e: unknown, message: string, retrying: boolean): void {
    const { store, log } = this.deps;
    const key = errorKey(e);
    const repeated = key === this.lastErrorKey;
    this.lastErrorKey = key;
    const identity = e instanceof WfmRequestError && e.kind === "identity";
    if (identity && !repeated) store.recordError("wfm-identity-mismatch", message);
    log({
      level: repeated ? "debug" : identity ? "error" : "warn",
      msg: identity ? "WFM identity refused" : "manifest sync failed",
      kind: identity ? "wfm-identity-mismatch" : "sync-failed",
      detail: message,
      ...(e instanceof WfmRequestError
        ? {
            status: e.details.status,
            type: e.details.problem?.type,
            rule: e.details.rule,
            retry: retrying ? "backoff" : "next-poll",
          }
        : {}),
    });
  }

  private async adopt(
    body: Uint8Array,
    etag: string,
    stored: bigint | undefined,
  ): Promise<SyncOutcome> {
    const { store, log } = this.deps;
    const decoded = decodeStateManifest(body);
    if (!decoded.value) {
      const errors = decoded.problems.filter((p) => p.severity === "error");
      const text = errors.map((p) => `${p.rule} at ${p.pointer || "/"}: ${p.message}`).join("; ");
      // Item 53: the codec reports any digest other than sha256:<64 lowercase hex> as wire.digest.
      if (errors.some((p) => p.rule === "wire.digest")) {
        throw new Rejected("unsupported-digest-algorithm", text);
      }
      throw new Rejected("manifest-invalid", text);
    }
    const m = decoded.value;
    if (stored !== undefined && m.manifestVersion <= stored) {
      throw new Rejected(
        "manifest-version-regressed",
        `manifestVersion ${m.manifestVersion} is not above the accepted ${stored}`,
      );
    }
    const t0 = this.now();
    const { deployments, fetched } = await this.collect(m);
    log({ level: "debug", msg: "deployments collected", fetched, ms: this.now() - t0 });
    try {
      store.acceptManifest({ manifestVersion: m.manifestVersion, etag, body, deployments });
    } catch (e) {
      if (e instanceof StoreConflictError)
        throw new Rejected("manifest-version-regressed", e.message);
      throw e;
    }
    log({
      level: "info",
      msg: "manifest accepted",
      manifestVersion: m.manifestVersion,
      deployments: deployments.length,
      fetched,
    });
    this.deps.onAccepted();
    return { result: "accepted", manifestVersion: m.manifestVersion, fetched };
  }

  /**
   * The YAML of every listed deployment: stored bytes where the digest is unchanged, fetched ones
   * otherwise, each verified and decoded. Throws Rejected on the first problem: nothing is kept.
   */
  private async collect(
    m: UnsignedAppStateManifest,
  ): Promise<{ deployments: AcceptedDeployment[]; fetched: "bundle" | "deployments" | "none" }> {
    const have = new Map<string, Uint8Array>();
    const needed: DeploymentManifestRef[] = [];
    for (const d of m.deployments) {
      const rec = this.deps.store.getDeployment(d.deploymentId);
      if (rec && rec.digest === d.digest) have.set(d.deploymentId, rec.yaml);
      else needed.push(d);
    }
    let fetched: "bundle" | "deployments" | "none" = "none";
    if (needed.length > 0) {
      const viaBundle = this.useBundle(m, needed);
      const got = viaBundle ? await this.fromBundle(m, needed) : await this.individually(needed);
      fetched = viaBundle ? "bundle" : "deployments";
      for (const [id, bytes] of got) have.set(id, bytes);
      for (const d of needed)
        if (
          mutant("size-bytes-enforced") &&
          d.sizeBytes !== BigInt(have.get(d.deploymentId)?.length ?? -1)
        )
          throw new Rejected(
            "manifest-invalid",
            `deployment ${d.deploymentId}: sizeBytes ${d.sizeBytes} is not the size fetched`,
          );
    }
    const deployments = m.deployments.map((d) => {
      const yaml = have.get(d.deploymentId) as Uint8Array;
      this.checkDeployment(d, yaml);
      return { deploymentId: d.deploymentId, digest: d.digest, yaml };
    });
    return { deployments, fetched };
  }

  /**
   * Bundle or one GET per changed deployment, whichever moves fewer bytes. sizeBytes is advisory
   * and used for nothing else (item 58); when any size is missing the choice cannot be made on
   * bytes, and per-deployment fetches move only what changed.
   */
  private useBundle(m: UnsignedAppStateManifest, needed: DeploymentManifestRef[]): boolean {
    const bundleSize = m.bundle?.sizeBytes;
    if (!m.bundle || bundleSize === undefined || mutant("digest-not-verified")) return false;
    let sum = 0n;
    for (const d of needed) {
      if (d.sizeBytes === undefined) return false;
      sum += d.sizeBytes;
    }
    return bundleSize < sum;
  }

  private async fetch(url: string, what: string): Promise<Uint8Array> {
    try {
      return await this.deps.api.getArtifact(url);
    } catch (e) {
      // Item 55: a 404 on a digest URL aborts this update; it never means "removed".
      if (e instanceof WfmRequestError && e.details.status === 404) {
        throw new Rejected("artifact-not-found", `${what} ${url}: 404`);
      }
      throw e;
    }
  }

  private verify(bytes: Uint8Array, digest: string, what: string): void {
    const actual = sha256(bytes);
    if (actual !== digest && !mutant("digest-not-verified")) {
      throw new Rejected("digest-mismatch", `${what}: expected ${digest}, got ${actual} (item 52)`);
    }
  }

  /**
   * All at once: the transport's connection pool bounds what is really in flight, and a
   * manifest that changed several deployments should not pay one round trip after another.
   */
  private async individually(needed: DeploymentManifestRef[]): Promise<Map<string, Uint8Array>> {
    const got = await Promise.all(
      needed.map(async (d) => {
        const bytes = await this.fetch(d.url, `deployment ${d.deploymentId}`);
        this.verify(bytes, d.digest, `deployment ${d.deploymentId}`);
        return [d.deploymentId, bytes] as const;
      }),
    );
    return new Map(got);
  }

  /**
   * Members are matched by the sha256 of their content, not by file name: rc.3 does not name
   * them (open question 13), and content addressing verifies each YAML at the same time.
   */
  private async fromBundle(
    m: UnsignedAppStateManifest,
    needed: DeploymentManifestRef[],
  ): Promise<Map<string, Uint8Array>> {
    const bundle = m.bundle;
    if (!bundle) throw new Error("fromBundle without a bundle");
    const bytes = await this.fetch(bundle.url, "bundle");
    this.verify(bytes, bundle.digest, "bundle");
    // Loaded on the first bundle only: the package tooling pulls in validators the idle agent
    // never needs.
    const { readTarGz } = await import("@margo/proto/package");
    const { entries, problems } = await readTarGz(bytes);
    const errors = problems.filter((p) => p.severity === "error");
    if (errors.length > 0) {
      throw new Rejected(
        "manifest-invalid",
        `bundle: ${errors.map((p) => `${p.rule} at ${p.pointer}: ${p.message}`).join("; ")}`,
      );
    }
    const byDigest = new Map<string, Uint8Array>();
    for (const e of entries) {
      if (e.type === "file" && e.content) byDigest.set(sha256(e.content), e.content);
    }
    const out = new Map<string, Uint8Array>();
    for (const d of needed) {
      const yaml = byDigest.get(d.digest);
      if (!yaml) {
        throw new Rejected(
          "digest-mismatch",
          `bundle has no member with digest ${d.digest} (deployment ${d.deploymentId})`,
        );
      }
      out.set(d.deploymentId, yaml);
    }
    return out;
  }

  /** Item 46: the YAML decodes and its id is the manifest's deploymentId; unknown keys pass (item 56). */
  private checkDeployment(d: DeploymentManifestRef, yaml: Uint8Array): void {
    const decoded = decodeApplicationDeployment(yaml);
    if (!decoded.value) {
      const errors = decoded.problems.filter((p) => p.severity === "error");
      throw new Rejected(
        "manifest-invalid",
        `deployment ${d.deploymentId}: ${errors.map((p) => `${p.rule} at ${p.pointer || "/"}: ${p.message}`).join("; ")}`,
      );
    }
    if (decoded.value.id !== d.deploymentId) {
      throw new Rejected(
        "manifest-invalid",
        `deployment ${d.deploymentId}: its YAML id is ${JSON.stringify(decoded.value.id)} (item 46)`,
      );
    }
  }
}
