import type { AgentLog } from "../log.js";
import type { AgentStore, OutboxEntry } from "../state/store.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import { Backoff, backoffDelay } from "../wfm/backoff.js";
import { type DeliveryVerdict, judgeDeliveryFailure, refusalReason } from "./delivery-policy.js";

export interface OutboxSenderOptions {
  /** Inside a downtime window nothing is sent and errors are ignored (item 87). */
  isDowntime: () => boolean;
  /** Spacing for retryable failures and no answer at all (full jitter, exponential). */
  backoff?: { baseMs: number; capMs: number };
  /**
   * Spacing for answers that are not about the report (policy 403, an identity failure): the cause
   * lies elsewhere (policy, provisioning), so retry slowly instead of hammering the WFM; also the
   * constant of a `fixed` strategy that names no delay.
   */
  slowBackoff?: { baseMs: number; capMs: number };
  /** Re-read the outbox this often when idle, in case an entry was enqueued without kick(). */
  idleRecheckMs?: number;
  /** How often to look whether a downtime window has ended. */
  downtimeCheckMs?: number;
  /**
   * Slow retries of a report refused by policy (`#not-authorized`, a bare 403, a 5xx proxy answer
   * without a problem) before it is dead-lettered. Bounded because the entry is the head of the
   * queue: forever would hold back every later report of every deployment. With the default slow
   * spacing, 10 tries span a few minutes; the count starts over after an agent restart.
   */
  policyRetries?: number;
  random?: () => number;
}

const DEFAULTS = {
  backoff: { baseMs: 500, capMs: 30_000 },
  slowBackoff: { baseMs: 5_000, capMs: 60_000 },
  idleRecheckMs: 5_000,
  downtimeCheckMs: 1_000,
  policyRetries: 10,
};

/**
 * OutboxSender delivers the status outbox to the WFM, one entry at a time in seq order. One at a
 * time is what keeps order: a later report never overtakes an earlier one (head-of-line), so the
 * WFM sees each deployment's states as they happened (item 65) even across failures and restarts.
 *
 * Never loses an entry: an entry's delivery state changes only after the WFM answered. Exactly
 * once with one gap: a crash after the WFM stored the report but before `outboxDelivered` commits
 * (the 2xx on its way back, then one SQLite commit) resends that one entry on restart. The resent
 * body is byte-identical, so the WFM stores the same status again; at most the in-flight entry.
 *
 * Head-of-line also means one refused report could hold back all later ones; the refusal rules
 * (`judgeDeliveryFailure`) make sure no answer is retried without end unless the WFM asked for a
 * retry or never answered: refused entries are dead-lettered (kept with the reason, never resent).
 */
export class OutboxSender {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private inFlight = false;
  /** The last turn found the outbox empty: only then may kick() end the wait. */
  private idle = false;
  private kicked = false;
  private drainWaiters: Array<() => void> = [];
  /** Spacing after a store failure (nothing to do with the WFM's answer). */
  private readonly backoff: Backoff;
  private readonly random: (() => number) | undefined;
  private readonly opts: Required<Omit<OutboxSenderOptions, "random">>;
  /** The entry the retry counters below belong to; a new head starts them over. */
  private headSeq = -1;
  private headRetries = 0;
  private policyRefusals = 0;

  constructor(
    private readonly store: AgentStore,
    private readonly api: WfmApi,
    private readonly log: AgentLog,
    opts: OutboxSenderOptions,
  ) {
    this.opts = {
      isDowntime: opts.isDowntime,
      backoff: opts.backoff ?? DEFAULTS.backoff,
      slowBackoff: opts.slowBackoff ?? DEFAULTS.slowBackoff,
      idleRecheckMs: opts.idleRecheckMs ?? DEFAULTS.idleRecheckMs,
      downtimeCheckMs: opts.downtimeCheckMs ?? DEFAULTS.downtimeCheckMs,
      policyRetries: opts.policyRetries ?? DEFAULTS.policyRetries,
    };
    this.random = opts.random;
    const random = opts.random ? { random: opts.random } : {};
    this.backoff = new Backoff({ ...this.opts.backoff, ...random });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * A new entry was enqueued: send now if idle. It does not cut a backoff or Retry-After short:
   * the head entry is still waiting and nothing may overtake it.
   */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /** Stop after the request in flight (if any) has been answered and recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /** Resolves once the outbox has no pending entry (tests). */
  drained(): Promise<void> {
    if (!this.inFlight && this.store.outboxPending(1).length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delay: number;
      try {
        delay = await this.step();
      } catch (err) {
        // A store failure (disk full, closed under us) must not end delivery for good, nor
        // surface as an unhandled rejection that takes the agent down.
        this.log({
          level: "error",
          msg: "status outbox failed",
          kind: "status-outbox-error",
          error: err instanceof Error ? err.message : String(err),
        });
        delay = this.backoff.next();
      }
      // A kick that landed between the empty read and here must not wait for the recheck.
      if (this.idle && this.kicked) continue;
      if (delay > 0) await this.sleep(delay, this.idle);
    }
  }

  /** One turn of the loop; returns how long to wait before the next one. */
  private async step(): Promise<number> {
    this.idle = false;
    this.kicked = false;
    if (this.opts.isDowntime()) return this.opts.downtimeCheckMs;
    const head = this.store.outboxPending(1)[0];
    if (!head) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
      this.idle = true;
      return this.opts.idleRecheckMs;
    }
    const wait = this.api.notBefore() - Date.now();
    if (wait > 0) return wait;
    return this.deliver(head);
  }

  /** One attempt at the head entry; returns how long to wait before the next attempt. */
  private async deliver(entry: OutboxEntry): Promise<number> {
    this.inFlight = true;
    try {
      const answer = await this.api.postStatus(entry.deploymentId, entry.body);
      this.store.outboxDelivered(entry.seq);
      this.backoff.reset();
      this.log({
        level: "debug",
        msg: "status delivered",
        seq: entry.seq,
        deploymentId: entry.deploymentId,
        status: answer.status,
      });
      return 0;
    } catch (err) {
      return this.failed(entry, err);
    } finally {
      this.inFlight = false;
    }
  }

  private failed(entry: OutboxEntry, err: unknown): number {
    // During downtime communication errors are ignored (item 87): no count, no log, no backoff
    // growth; the loop sends nothing until the window ends.
    if (this.opts.isDowntime()) return 0;
    if (this.headSeq !== entry.seq) {
      this.headSeq = entry.seq;
      this.headRetries = 0;
      this.policyRefusals = 0;
    }
    const base = { seq: entry.seq, deploymentId: entry.deploymentId };
    const verdict = judgeDeliveryFailure(err);
    const wfmErr = err instanceof WfmRequestError ? err : undefined;
    const retryAt = wfmErr?.details.retryAt;
    if (verdict.action === "defer") {
      // Nothing was sent: not an attempt. Wait out the Retry-After the transport holds (item 86).
      return Math.max(retryAt ?? this.api.notBefore(), Date.now() + 1) - Date.now();
    }
    if (verdict.action === "retry" && verdict.spacing === "slow" && verdict.bounded) {
      this.policyRefusals++;
      if (this.policyRefusals > this.opts.policyRetries && wfmErr)
        return this.deadLetter(
          entry,
          `${refusalReason(wfmErr)} (still refused after ${this.policyRefusals} attempts)`,
        );
    }
    if (verdict.action === "dead-letter") return this.deadLetter(entry, verdict.reason);

    const message = err instanceof Error ? err.message : String(err);
    const status = wfmErr?.details.status;
    this.store.outboxFailed(
      entry.seq,
      wfmErr ? `${wfmErr.kind}${status ? ` ${status}` : ""}: ${message}` : message,
    );
    const delay = this.retryDelay(verdict);
    this.log({
      level: "warn",
      msg: "status delivery failed",
      kind: "status-delivery-failed",
      ...base,
      ...(wfmErr ? { errorKind: wfmErr.kind, status } : {}),
      spacing: verdict.spacing,
      error: message,
    });
    // Never before Retry-After (item 86); a longer spacing still applies.
    const untilRetryAfter = retryAt !== undefined ? retryAt - Date.now() : 0;
    return Math.max(delay, untilRetryAfter);
  }

  /** Spacing before the next attempt at the same head entry. */
  private retryDelay(v: Extract<DeliveryVerdict, { action: "retry" }>): number {
    const attempt = this.headRetries++;
    const random = this.random;
    switch (v.spacing) {
      case "slow":
        return backoffDelay(attempt, { ...this.opts.slowBackoff, random });
      case "fixed":
        // Constant: the WFM asked for this spacing, growing it would ignore the answer.
        return v.advisoryMs ?? this.opts.slowBackoff.baseMs;
      case "exponential": {
        // "exponential backoff starting at retryAfterSeconds" (OpenAPI): the advisory value is
        // both the first ceiling and a floor, so jitter never undercuts what the WFM asked for.
        const floor = v.advisoryMs ?? 0;
        const baseMs = v.advisoryMs ?? this.opts.backoff.baseMs;
        const capMs = Math.max(this.opts.backoff.capMs, baseMs);
        return Math.max(floor, backoffDelay(attempt, { baseMs, capMs, random }));
      }
    }
  }

  /** The WFM will never take these bytes: keep them with the reason, so one report blocks none. */
  private deadLetter(entry: OutboxEntry, reason: string): number {
    this.store.outboxDeadLetter(entry.seq, reason);
    this.log({
      level: "error",
      msg: "status refused for good; dead-lettered",
      kind: "status-dead-lettered",
      seq: entry.seq,
      deploymentId: entry.deploymentId,
      reason,
    });
    return 0;
  }

  private sleep(ms: number, wakeOnKick: boolean): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        if (this.wake === wake) this.wake = undefined;
        resolve();
      };
      // stop() must always end a sleep; kick() only an idle one (it must not cut a backoff).
      const wake = () => {
        if (wakeOnKick || !this.running) finish();
      };
      const timer = setTimeout(finish, ms);
      timer.unref?.();
      this.wake = wake;
    });
  }
}
