import { describe, expect, it } from "vitest";
import { Backoff, backoffCeiling, backoffDelay, jittered } from "./backoff.js";

describe("backoff", () => {
  it("ceiling doubles from base up to the cap", () => {
    const o = { baseMs: 100, capMs: 1000 };
    expect([0, 1, 2, 3, 4, 50].map((a) => backoffCeiling(a, o))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it("full jitter: the delay is uniform between 0 and the ceiling", () => {
    expect(backoffDelay(3, { baseMs: 100, capMs: 1000, random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { baseMs: 100, capMs: 1000, random: () => 0.5 })).toBe(400);
    expect(backoffDelay(3, { baseMs: 100, capMs: 1000, random: () => 0.999999 })).toBe(799);
  });

  it("Backoff grows per failure and starts over after reset", () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.5 });
    expect([b.next(), b.next(), b.next()]).toEqual([50, 100, 200]);
    expect(b.failures).toBe(3);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it("jittered spreads the period by +- ratio", () => {
    expect(jittered(10_000, 0.1, () => 0)).toBe(9_000);
    expect(jittered(10_000, 0.1, () => 0.5)).toBe(10_000);
    expect(jittered(10_000, 0.1, () => 0.999999)).toBe(11_000);
    expect(jittered(10_000, 0, () => 0.9)).toBe(10_000);
  });
});
