import type { ProblemDetail } from "@margo/proto";
import { describe, expect, it } from "vitest";
import { WfmRequestError } from "../wfm/api.js";
import { errorKey, margoProblemType, RetryPolicy } from "./retry-policy.js";

const NS = "https://docs.margo.org/specification/problem-types#";
const NOW = 1_000_000;

/** An error answer as the transport builds it (strategy numbers as the generated enum). */
function http(
  status: number,
  p: { type?: string; retryable?: boolean; strategy?: 1 | 2 | 3; after?: number } = {},
  retryAt?: number,
): WfmRequestError {
  const problem = {
    type: p.type ?? "about:blank",
    title: "x",
    status,
    ...(p.retryable !== undefined ? { retryable: p.retryable } : {}),
    ...(p.after !== undefined ? { retryAfterSeconds: BigInt(p.after) } : {}),
    backoffStrategy: p.strategy ?? 0,
    errors: [],
  } as unknown as ProblemDetail;
  const backoff = p.strategy === 2 ? "fixed" : p.strategy === 3 ? "exponential" : "none";
  return new WfmRequestError("http", `${status}`, {
    status,
    problem,
    retryable: p.retryable ?? false,
    backoff,
    ...(retryAt !== undefined ? { retryAt } : {}),
  });
}

const policy = (random = 0.5) =>
  new RetryPolicy({
    baseMs: 1_000,
    capMs: 60_000,
    fixedMs: 7_000,
    random: () => random,
    now: () => NOW,
  });

describe("RetryPolicy (item 86)", () => {
  it("no answer: jittered exponential that grows per failure and starts over after reset", () => {
    const p = policy();
    const net = new WfmRequestError("network", "ECONNREFUSED", {
      retryable: true,
      backoff: "exponential",
    });
    expect(
      [p.decide(net), p.decide(net), p.decide(net)].map((d) => d.action === "retry" && d.delayMs),
    ).toEqual([500, 1_000, 2_000]);
    p.reset();
    expect(p.decide(net)).toMatchObject({ action: "retry", delayMs: 500 });
  });

  it("retryable:false is never retried on the error spacing, whatever the status", () => {
    for (const status of [400, 403, 404, 409, 422, 500, 503]) {
      expect(policy().decide(http(status, { retryable: false }))).toMatchObject({
        action: "regular",
      });
    }
  });

  it("retryable with an explicit backoffStrategy none means do not retry", () => {
    expect(policy().decide(http(503, { retryable: true, strategy: 1 }))).toMatchObject({
      action: "regular",
      reason: expect.stringContaining("none"),
    });
  });

  it("fixed: constant spacing of retryAfterSeconds (the fixed default without it), never growing", () => {
    const p = policy();
    const e = http(503, { retryable: true, strategy: 2, after: 3 });
    expect([p.decide(e), p.decide(e), p.decide(e)]).toEqual(
      Array(3).fill({ action: "retry", delayMs: 3_000, spacing: "fixed" }),
    );
    expect(policy().decide(http(503, { retryable: true, strategy: 2 }))).toMatchObject({
      delayMs: 7_000,
    });
  });

  it("exponential starts at retryAfterSeconds and jitter never undercuts it", () => {
    const p = policy(0);
    const e = http(429, { retryable: true, strategy: 3, after: 4 });
    expect(p.decide(e)).toMatchObject({ action: "retry", delayMs: 4_000, spacing: "exponential" });
    const q = policy(0.999);
    expect([q.decide(e), q.decide(e)].map((d) => d.action === "retry" && d.delayMs)).toEqual([
      4_000, 7_992,
    ]);
  });

  it("Retry-After is a floor of every retry; a deferred call waits exactly until it ends", () => {
    const e = http(503, { retryable: true, strategy: 2, after: 1 }, NOW + 30_000);
    expect(policy().decide(e)).toMatchObject({ action: "retry", delayMs: 30_000 });
    const deferred = new WfmRequestError("deferred", "wait", {
      retryable: true,
      backoff: "none",
      retryAt: NOW + 12_345,
    });
    const p = policy();
    expect(p.decide(deferred)).toEqual({ action: "retry", delayMs: 12_345, spacing: "deferred" });
    expect(p.failures).toBe(0);
  });

  it("identity and protocol failures wait for the regular turn", () => {
    const id = new WfmRequestError("identity", "spiffe", { retryable: false, backoff: "none" });
    const proto = new WfmRequestError("protocol", "202", { retryable: false, backoff: "none" });
    expect(policy().decide(id).action).toBe("regular");
    expect(policy().decide(proto).action).toBe("regular");
  });

  it("margoProblemType reads only the reserved namespace; errorKey tells failures apart", () => {
    expect(margoProblemType(http(404, { type: `${NS}device-not-found` }))).toBe("device-not-found");
    expect(
      margoProblemType(http(404, { type: "https://vendor.example/p#device-not-found" })),
    ).toBeUndefined();
    expect(margoProblemType(new Error("x"))).toBeUndefined();
    expect(errorKey(http(404, { type: `${NS}device-not-found` }))).toBe(
      errorKey(http(404, { type: `${NS}device-not-found` })),
    );
    expect(errorKey(http(404, { type: `${NS}device-not-found` }))).not.toBe(
      errorKey(http(403, { type: `${NS}not-authorized` })),
    );
  });
});
