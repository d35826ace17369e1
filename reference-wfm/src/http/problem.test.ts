import { BackoffStrategy } from "@margo/proto";
import { decodeProblemDetail } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import { WfmError, type WfmErrorKind } from "../core/errors.js";
import { MARGO_PROBLEM_BASE, PROBLEM_SHAPES, problemFromError } from "./problem.js";

describe("WfmError -> problem+json", () => {
  it("item 84: every kind maps to a registered Margo type or about:blank with the reason phrase", () => {
    const margoKinds: WfmErrorKind[] = [
      "invalid-request",
      "semantic-error",
      "not-authorized",
      "gateway-not-found",
      "device-not-found",
      "deployment-not-found",
      "invalid-bundle",
      "server-cannot-generate-response",
    ];
    for (const [kind, shape] of Object.entries(PROBLEM_SHAPES) as [
      WfmErrorKind,
      (typeof PROBLEM_SHAPES)[WfmErrorKind],
    ][]) {
      const r = problemFromError(new WfmError(kind, "why"), "/api/v1/x");
      expect(r.headers["content-type"]).toBe("application/problem+json");
      const d = decodeProblemDetail(r.body);
      expect(d.problems).toEqual([]);
      expect(d.value?.status).toBe(shape.status);
      if (margoKinds.includes(kind)) expect(d.value?.type).toBe(`${MARGO_PROBLEM_BASE}${kind}`);
      else expect(d.value?.type).toBe("about:blank");
      expect(d.value?.instance).toBe("/api/v1/x");
    }
    const gone = decodeProblemDetail(problemFromError(new WfmError("conflict", "x")).body).value;
    expect(gone?.title).toBe("Conflict");
  });

  it("item 85: 429 and 503 are retryable, exponential, with Retry-After; 4xx are not", () => {
    const r = problemFromError(new WfmError("rate-limited", "slow down", [], 3));
    expect(r.headers["retry-after"]).toBe("3");
    const p = decodeProblemDetail(r.body).value;
    expect(p?.retryable).toBe(true);
    expect(p?.backoffStrategy).toBe(BackoffStrategy.BACKOFF_STRATEGY_EXPONENTIAL);
    expect(p?.retryAfterSeconds).toBe(3n);
    const u = problemFromError(new WfmError("unavailable", "registry down", [], 0.2));
    expect(u.headers["retry-after"]).toBe("1");
    const s = problemFromError(
      new WfmError("semantic-error", "bad", [{ field: "/a", message: "m" }]),
    );
    expect(s.headers["retry-after"]).toBeUndefined();
    const sp = decodeProblemDetail(s.body).value;
    expect(sp?.retryable).toBe(false);
    expect(sp?.backoffStrategy).toBe(BackoffStrategy.BACKOFF_STRATEGY_NONE);
    expect(sp?.errors).toEqual([{ field: "/a", message: "m" }]);
  });

  it("unknown exceptions become a 500 that leaks nothing", () => {
    const r = problemFromError(new Error("SQLITE_CORRUPT at /secret/path"), "/api/v1/deployments");
    expect(r.status).toBe(500);
    expect(r.body.toString()).not.toContain("secret");
    expect(r.headers["retry-after"]).toBeDefined();
    const i = problemFromError(new WfmError("internal", "db at /secret/path"));
    expect(i.body.toString()).not.toContain("secret");
  });

  it("an instance that is no URI reference is left out instead of failing the answer", () => {
    const r = problemFromError(new WfmError("not-found", "x"), "/api/v1/a b\\c{}");
    expect(r.status).toBe(404);
    const d = decodeProblemDetail(r.body);
    expect(d.value?.status).toBe(404);
  });
});
