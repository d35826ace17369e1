import { describe, expect, it } from "vitest";
import { RateLimiter } from "./rate-limit.js";

describe("per-client token bucket", () => {
  it("item 85: allows the burst, then names the wait, and refills over time", () => {
    let t = 0;
    const rl = new RateLimiter(2, 3, () => t);
    expect([rl.take("a"), rl.take("a"), rl.take("a")]).toEqual([0, 0, 0]);
    expect(rl.take("a")).toBe(1);
    // Another client is unaffected.
    expect(rl.take("b")).toBe(0);
    t += 500;
    expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBeGreaterThanOrEqual(1);
  });

  it("a slow rate gives a long Retry-After", () => {
    let t = 0;
    const rl = new RateLimiter(0.1, 1, () => t);
    expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBe(10);
    t += 10_000;
    expect(rl.take("a")).toBe(0);
  });
});
