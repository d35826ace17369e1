import { describe, expect, it } from "vitest";
import { WfmRequestError } from "../wfm/api.js";
import { judgeDeliveryFailure, MARGO_PROBLEM_NS } from "./delivery-policy.js";

type Details = ConstructorParameters<typeof WfmRequestError>[2];

function http(
  status: number,
  p: { type?: string; retryable?: boolean; strategy?: number; after?: bigint; body?: boolean } = {},
  backoff: Details["backoff"] = "none",
) {
  const withBody = p.body ?? true;
  const problem = withBody
    ? ({
        type: p.type ?? "about:blank",
        title: "t",
        status,
        detail: `detail ${status}`,
        backoffStrategy: p.strategy ?? 0,
        errors: [],
        ...(p.retryable !== undefined ? { retryable: p.retryable } : {}),
        ...(p.after !== undefined ? { retryAfterSeconds: p.after } : {}),
      } as never)
    : undefined;
  return new WfmRequestError("http", `HTTP ${status}`, {
    status,
    ...(problem ? { problem } : {}),
    retryable: p.retryable ?? false,
    backoff,
  });
}

const margo = (name: string) => `${MARGO_PROBLEM_NS}${name}`;

describe("judgeDeliveryFailure (item 86: by type, retryable, backoffStrategy)", () => {
  it.each([
    [400, margo("invalid-request")],
    [422, margo("semantic-error")],
    [404, margo("deployment-not-found")],
    [404, "about:blank"],
    [404, "https://vendor.example/problems#gone"],
    [409, "about:blank"],
    [501, "about:blank"],
  ])("retryable:false %i %s is dead-lettered at once with type and detail", (status, type) => {
    const v = judgeDeliveryFailure(http(status, { type, retryable: false }));
    expect(v.action).toBe("dead-letter");
    if (v.action !== "dead-letter") return;
    expect(v.reason).toContain(String(status));
    expect(v.reason).toContain(type);
    expect(v.reason).toContain(`detail ${status}`);
  });

  it("501 without any problem body is dead-lettered too (not a proxy hiccup)", () => {
    expect(judgeDeliveryFailure(http(501, { body: false })).action).toBe("dead-letter");
  });

  it("a protocol error (an undefined 2xx) is dead-lettered", () => {
    const err = new WfmRequestError("protocol", "POST status: unexpected status 202", {
      status: 202,
      retryable: false,
      backoff: "none",
    });
    const v = judgeDeliveryFailure(err);
    expect(v).toEqual({ action: "dead-letter", reason: expect.stringContaining("202") });
  });

  it("#not-authorized (policy) and a bare 403 get bounded slow retries", () => {
    expect(judgeDeliveryFailure(http(403, { type: margo("not-authorized") }))).toEqual({
      action: "retry",
      spacing: "slow",
      bounded: true,
    });
    expect(judgeDeliveryFailure(http(403, { type: "about:blank" }))).toEqual({
      action: "retry",
      spacing: "slow",
      bounded: true,
    });
    // Keyed on type: a 403 carrying a registered non-policy type is that type's verdict.
    expect(judgeDeliveryFailure(http(403, { type: margo("invalid-request") })).action).toBe(
      "dead-letter",
    );
  });

  it("a 502 without a problem body (a proxy) is bounded and slow; with a Margo refusal it is dead", () => {
    expect(judgeDeliveryFailure(http(502, { body: false }))).toMatchObject({
      spacing: "slow",
      bounded: true,
    });
    expect(judgeDeliveryFailure(http(502, { retryable: false })).action).toBe("dead-letter");
  });

  it("retryable answers follow backoffStrategy: fixed, exponential, none", () => {
    expect(
      judgeDeliveryFailure(http(503, { retryable: true, strategy: 2, after: 7n }, "fixed")),
    ).toEqual({ action: "retry", spacing: "fixed", advisoryMs: 7_000 });
    expect(
      judgeDeliveryFailure(http(429, { retryable: true, strategy: 3, after: 2n }, "exponential")),
    ).toEqual({ action: "retry", spacing: "exponential", advisoryMs: 2_000 });
    expect(judgeDeliveryFailure(http(503, { retryable: true }, "exponential"))).toEqual({
      action: "retry",
      spacing: "exponential",
    });
    // retryable without a strategy on an unusual status: retry, exponentially.
    expect(judgeDeliveryFailure(http(409, { retryable: true }, "none"))).toEqual({
      action: "retry",
      spacing: "exponential",
    });
    // An explicit none means "do not retry" (OpenAPI) even next to retryable: true.
    const none = judgeDeliveryFailure(http(503, { retryable: true, strategy: 1 }, "none"));
    expect(none).toEqual({ action: "dead-letter", reason: expect.stringContaining("none") });
  });

  it("no answer retries fast; an identity failure slowly and without bound; deferred waits", () => {
    const network = new WfmRequestError("network", "ECONNREFUSED", {
      retryable: true,
      backoff: "exponential",
    });
    expect(judgeDeliveryFailure(network)).toEqual({ action: "retry", spacing: "exponential" });
    const identity = new WfmRequestError("identity", "spiffe id mismatch", {
      retryable: false,
      backoff: "none",
    });
    expect(judgeDeliveryFailure(identity)).toEqual({
      action: "retry",
      spacing: "slow",
      bounded: false,
    });
    const deferred = new WfmRequestError("deferred", "Retry-After", {
      retryable: true,
      backoff: "none",
      retryAt: Date.now() + 1000,
    });
    expect(judgeDeliveryFailure(deferred)).toEqual({ action: "defer" });
    expect(judgeDeliveryFailure(new Error("disk I/O"))).toEqual({
      action: "retry",
      spacing: "exponential",
    });
  });
});
