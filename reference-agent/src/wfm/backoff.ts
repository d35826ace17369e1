/**
 * Retry spacing for every loop that talks to the WFM. Full jitter (a uniform draw between 0 and
 * the exponential ceiling) rather than equal or decorrelated jitter: after a WFM restart a whole
 * fleet fails at once, and full jitter spreads its reconnects most evenly.
 */

export interface BackoffOptions {
  /** Ceiling of the first retry. */
  baseMs: number;
  /** The ceiling never grows past this. */
  capMs: number;
  /** Uniform [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

/** Ceiling for the `attempt`-th retry (0-based): min(cap, base * 2^attempt). */
export function backoffCeiling(attempt: number, opts: BackoffOptions): number {
  // 2^attempt overflows to Infinity long before it matters; min() keeps it finite.
  return Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, attempt));
}

/** Delay before the `attempt`-th retry: uniform in [0, ceiling] (full jitter). */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const r = (opts.random ?? Math.random)();
  return Math.floor(r * backoffCeiling(attempt, opts));
}

/** A retry sequence: `next()` after each failure, `reset()` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}
  /** Delay before the next try; each call raises the ceiling until the cap. */
  next(): number {
    return backoffDelay(this.attempt++, this.opts);
  }
  reset(): void {
    this.attempt = 0;
  }
  /** Failures since the last reset. */
  get failures(): number {
    return this.attempt;
  }
}

/**
 * `periodMs` spread uniformly by +- `ratio` (config polling.jitterRatio): devices restarted
 * together (a power cut) would otherwise poll the WFM in lock step forever.
 */
export function jittered(periodMs: number, ratio: number, random: () => number = Math.random) {
  const spread = periodMs * Math.min(Math.max(ratio, 0), 1);
  return Math.max(0, Math.round(periodMs - spread + 2 * spread * random()));
}
