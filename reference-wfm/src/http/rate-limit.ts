/**
 * Per-client token buckets (item 85): one noisy client must not starve the others, and a refused
 * request tells the client exactly how long to wait instead of letting it hammer the WFM.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;

  constructor(
    private readonly requestsPerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Take one token; returns 0 when allowed, else the whole seconds until one is available. */
  take(key: string): number {
    const t = this.now();
    this.sweep(t);
    const rate = this.requestsPerSecond;
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    if (rate <= 0) return 60;
    return Math.max(1, Math.ceil((1 - b.tokens) / rate));
  }

  /** Drop full buckets now and then so thousands of idle clients cost no memory. */
  private sweep(t: number): void {
    if (t - this.lastSweep < 60_000) return;
    this.lastSweep = t;
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.requestsPerSecond >= this.burst) {
        this.buckets.delete(k);
      }
    }
  }
}
