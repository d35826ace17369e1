import type { AgentLog } from "../log.js";
import type { AgentStore, OutboxEntry } from "../state/store.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import { Backoff } from "../wfm/backoff.js";

export interface OutboxSenderOptions {
  /** Inside a downtime window nothing is sent and errors are ignored (item 87). */
  isDowntime: () => boolean;
  /** Spacing for retryable failures and no answer at all (full jitter). */
  backoff?: { baseMs: number; capMs: number };
  /**
   * Spacing for answers that are not about the report (403, 404, an identity failure): the cause
   * lies elsewhere (policy, provisioning), so retry slowly instead of hammering the WFM.
   */
  slowBackoff?: { baseMs: number; capMs: number };
  /** Re-read the outbox this often when idle, in case an entry was enqueued without kick(). */
  idleRecheckMs?: number;
  /** How often to look whether a downtime window has ended. */
  downtimeCheckMs?: number;
  random?: () => number;
}

const DEFAULTS = {
  backoff: { baseMs: 500, capMs: 30_000 },
  slowBackoff: { baseMs: 5_000, capMs: 60_000 },
  idleRecheckMs: 5_000,
  downtimeCheckMs: 1_000,
};

/**
 * OutboxSender delivers the status outbox to the WFM, one entry at a time in seq order. One at a
 * time is what keeps order: a later report never overtakes an earlier one (head-of-line), so the
 * WFM sees each deployment's states as they happened (item 65) even across failures and restarts.
 *
 * Never loses an entry: an entry's delivery state changes only after the WFM answered. Exactly
 * once with one gap: a crash after the WFM's 2xx but before `outboxDelivered` commits resends that
 * one entry on restart (at-least-once in a window of a few microseconds between the response and
 * the SQLite commit). The resent body is byte-identical, so the WFM stores the same status again.
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
  private readonly backoff: Backoff;
  private readonly slow: Backoff;
  private readonly opts: Required<Omit<OutboxSenderOptions, "random">>;

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
    };
    const random = opts.random ? { random: opts.random } : {};
    this.backoff = new Backoff({ ...this.opts.backoff, ...random });
    this.slow = new Backoff({ ...this.opts.slowBackoff, ...random });
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
      this.slow.reset();
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
    const base = { seq: entry.seq, deploymentId: entry.deploymentId };
    if (!(err instanceof WfmRequestError)) {
      const message = err instanceof Error ? err.message : String(err);
      this.store.outboxFailed(entry.seq, message);
      this.log({
        level: "warn",
        msg: "status delivery failed",
        kind: "status-delivery-failed",
        ...base,
        error: message,
      });
      return this.backoff.next();
    }
    const { details } = err;
    if (err.kind === "deferred") {
      // Nothing was sent: not an attempt. Wait out the Retry-After the transport holds (item 86).
      return Math.max(details.retryAt ?? this.api.notBefore(), Date.now() + 1) - Date.now();
    }
    const status = details.status;
    if (err.kind === "http" && (status === 400 || status === 422) && !details.retryable) {
      // The WFM can never accept these bytes: keep them with the reason and move on, so one bad
      // report does not block every later one.
      const reason =
        `${status} ${details.problem?.type ?? ""} ${details.problem?.detail ?? err.message}`.trim();
      this.store.outboxDeadLetter(entry.seq, reason);
      this.log({
        level: "error",
        msg: "status refused for good; dead-lettered",
        kind: "status-dead-lettered",
        ...base,
        reason,
      });
      return 0;
    }
    this.store.outboxFailed(entry.seq, `${err.kind}${status ? ` ${status}` : ""}: ${err.message}`);
    const retryable = err.kind === "network" || details.retryable;
    const delay = retryable ? this.backoff.next() : this.slow.next();
    const untilRetryAfter = details.retryAt !== undefined ? details.retryAt - Date.now() : 0;
    this.log({
      level: "warn",
      msg: "status delivery failed",
      kind: "status-delivery-failed",
      ...base,
      errorKind: err.kind,
      status,
      error: err.message,
    });
    // Never before Retry-After (item 86); a backoff longer than it still applies.
    return Math.max(delay, untilRetryAfter);
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
