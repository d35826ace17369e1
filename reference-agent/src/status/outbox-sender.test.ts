import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { record } from "../../test/support/deployments.js";
import type { LogEvent } from "../log.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import { type ManifestResponse, type WfmApi, WfmRequestError } from "../wfm/api.js";
import { OutboxSender, type OutboxSenderOptions } from "./outbox-sender.js";

type Answer = () => Promise<{ status: 200 | 201 }>;

/** A WfmApi boundary fake: postStatus answers from a script, every call is recorded with its time. */
class FakeApi implements WfmApi {
  calls: Array<{ deploymentId: string; body: string; at: number }> = [];
  script: Answer[] = [];
  notBeforeMs = 0;
  async putCapabilities(): Promise<{ status: 200 | 201 }> {
    throw new Error("unused");
  }
  async deleteCapabilities(): Promise<void> {}
  async getManifest(): Promise<ManifestResponse> {
    throw new Error("unused");
  }
  async getArtifact(): Promise<Uint8Array> {
    throw new Error("unused");
  }
  postStatus(deploymentId: string, body: Uint8Array): Promise<{ status: 200 | 201 }> {
    this.calls.push({ deploymentId, body: Buffer.from(body).toString(), at: Date.now() });
    const next = this.script.shift();
    return next ? next() : Promise.resolve({ status: 200 });
  }
  notBefore(): number {
    return this.notBeforeMs;
  }
  resetConnections(): void {}
  close(): void {}
}

const httpError =
  (status: number, retryable: boolean, extra: { retryAt?: number } = {}) =>
  () =>
    Promise.reject(
      new WfmRequestError("http", `HTTP ${status}`, {
        status,
        retryable,
        backoff: retryable ? "exponential" : "none",
        problem: {
          type: `https://margo.org/problems#status-${status}`,
          title: "t",
          status,
          detail: `detail ${status}`,
        } as never,
        ...extra,
      }),
    );
/** An error answer with a full problem (type, retryable, backoffStrategy, retryAfterSeconds). */
const problemError =
  (
    status: number,
    p: { type: string; retryable: boolean; strategy: 0 | 1 | 2 | 3; after?: bigint },
    backoff: "exponential" | "fixed" | "none",
  ) =>
  () =>
    Promise.reject(
      new WfmRequestError("http", `HTTP ${status}`, {
        status,
        retryable: p.retryable,
        backoff,
        problem: {
          type: p.type,
          title: "t",
          status,
          detail: `detail ${status}`,
          retryable: p.retryable,
          backoffStrategy: p.strategy,
          errors: [],
          ...(p.after !== undefined ? { retryAfterSeconds: p.after } : {}),
        } as never,
      }),
    );
const NS = "https://docs.margo.org/specification/problem-types#";
const protocolError = () => () =>
  Promise.reject(
    new WfmRequestError("protocol", "POST status: unexpected status 202", {
      status: 202,
      retryable: false,
      backoff: "none",
    }),
  );
const identityError = () => () =>
  Promise.reject(
    new WfmRequestError("identity", "spiffe id mismatch", { retryable: false, backoff: "none" }),
  );
const gaps = (calls: Array<{ at: number }>) =>
  calls.slice(1).map((c, i) => c.at - (calls[i]?.at ?? 0));

const networkError = () => () =>
  Promise.reject(
    new WfmRequestError("network", "ECONNREFUSED", { retryable: true, backoff: "exponential" }),
  );

const dirs: string[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: Partial<OutboxSenderOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "agent-outbox-"));
  dirs.push(dir);
  const store = SqliteAgentStore.open(dir);
  const api = new FakeApi();
  const logs: LogEvent[] = [];
  const sender = new OutboxSender(store, api, (e) => logs.push(e), {
    isDowntime: () => false,
    backoff: { baseMs: 20, capMs: 40 },
    slowBackoff: { baseMs: 60, capMs: 60 },
    idleRecheckMs: 10_000,
    downtimeCheckMs: 10,
    random: () => 1,
    ...opts,
  });
  cleanups.push(async () => {
    await sender.stop();
    store.close();
  });
  const enqueue = (id: string, body: string) =>
    store.saveDeployment(record(id, "installing"), new TextEncoder().encode(body)) as number;
  return { store, api, logs, sender, enqueue };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `cond` holds (the machine may be loaded: no fixed sleeps for positive waits). */
async function until(cond: () => boolean, timeoutMs = 3_000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("condition not reached");
    await sleep(5);
  }
  return Date.now() - t0;
}

describe("OutboxSender", () => {
  it("item 65: delivers in seq order, one at a time; failures never let a later report overtake", async () => {
    const { store, api, sender, enqueue } = setup();
    enqueue("d1", "a");
    enqueue("d2", "b");
    enqueue("d1", "c");
    api.script = [networkError(), httpError(503, true), httpError(500, true)];
    sender.start();
    await sender.drained();
    expect(api.calls.map((c) => c.body)).toEqual(["a", "a", "a", "a", "b", "c"]);
    expect(api.calls.map((c) => c.deploymentId)).toEqual(["d1", "d1", "d1", "d1", "d2", "d1"]);
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 3, deadLettered: 0 });
  });

  it("item 86: no call before Retry-After, whether from the error or from api.notBefore()", async () => {
    const { api, sender, enqueue } = setup();
    enqueue("d1", "a");
    const retryAt = Date.now() + 300;
    api.script = [httpError(429, true, { retryAt })];
    sender.start();
    await sender.drained();
    expect(api.calls).toHaveLength(2);
    expect(api.calls[1]?.at).toBeGreaterThanOrEqual(retryAt);

    api.notBeforeMs = Date.now() + 250;
    enqueue("d1", "b");
    sender.kick();
    await sleep(150);
    expect(api.calls).toHaveLength(2);
    await sender.drained();
    expect(api.calls[2]?.at).toBeGreaterThanOrEqual(api.notBeforeMs);

    // A deferred error (the transport refused to send) waits for its retryAt, not counted as an attempt.
    const { store: s2, api: api2, sender: sender2, enqueue: enqueue2 } = setup();
    enqueue2("d1", "x");
    const deferredUntil = Date.now() + 200;
    api2.script = [
      () =>
        Promise.reject(
          new WfmRequestError("deferred", "Retry-After running", {
            retryable: true,
            backoff: "exponential",
            retryAt: deferredUntil,
          }),
        ),
    ];
    sender2.start();
    await sender2.drained();
    expect(api2.calls[1]?.at).toBeGreaterThanOrEqual(deferredUntil);
    expect(s2.outboxStats().delivered).toBe(1);
  });

  it("dead-letters a 422 with its problem and moves on, logged at error", async () => {
    const { store, api, logs, sender, enqueue } = setup();
    const bad = enqueue("d1", "bad");
    enqueue("d2", "good");
    api.script = [httpError(422, false)];
    sender.start();
    await sender.drained();
    expect(api.calls.map((c) => c.body)).toEqual(["bad", "good"]);
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 1, deadLettered: 1 });
    const dead = store.outboxDeadLetters(5);
    expect(dead.map((e) => e.seq)).toEqual([bad]);
    expect(dead[0]?.lastError).toContain("#status-422");
    expect(dead[0]?.lastError).toContain("detail 422");
    expect(logs.some((l) => l.level === "error" && l.kind === "status-dead-lettered")).toBe(true);
  });

  it("a 403 keeps the entry (attempts counted) and retries slowly, still in order", async () => {
    const { store, api, sender, enqueue } = setup();
    enqueue("d1", "a");
    enqueue("d1", "b");
    api.script = [httpError(403, false)];
    sender.start();
    await sleep(30);
    // Retried on the slow spacing (60 ms here), not the fast one (20-40 ms).
    expect(api.calls).toHaveLength(1);
    const head = store.outboxPending(1)[0];
    expect(head?.attempts).toBe(1);
    expect(head?.lastError).toContain("403");
    await sender.drained();
    expect(api.calls.map((c) => c.body)).toEqual(["a", "a", "b"]);
    expect((api.calls[1]?.at ?? 0) - (api.calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(55);
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 2, deadLettered: 0 });
  });

  it("item 86: non-retryable 404/409/501 and a protocol answer are dead-lettered at once; later reports flow", async () => {
    const { store, api, logs, sender, enqueue } = setup();
    const s404 = enqueue("d1", "a");
    const s409 = enqueue("d2", "b");
    const s501 = enqueue("d3", "c");
    const s202 = enqueue("d4", "d");
    enqueue("d1", "e");
    api.script = [
      problemError(
        404,
        { type: `${NS}deployment-not-found`, retryable: false, strategy: 1 },
        "none",
      ),
      problemError(409, { type: "about:blank", retryable: false, strategy: 1 }, "none"),
      problemError(501, { type: "about:blank", retryable: false, strategy: 1 }, "none"),
      protocolError(),
    ];
    sender.start();
    await sender.drained();
    // Each refused entry was tried exactly once: nothing is retried, nothing overtakes.
    expect(api.calls.map((c) => c.body)).toEqual(["a", "b", "c", "d", "e"]);
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 1, deadLettered: 4 });
    const dead = new Map(store.outboxDeadLetters(10).map((e) => [e.seq, e.lastError ?? ""]));
    expect(dead.get(s404)).toContain("#deployment-not-found");
    expect(dead.get(s404)).toContain("detail 404");
    expect(dead.get(s409)).toContain("409 about:blank");
    expect(dead.get(s501)).toContain("501");
    expect(dead.get(s202)).toMatch(/protocol 202/);
    expect(logs.filter((l) => l.kind === "status-dead-lettered")).toHaveLength(4);
  });

  it("item 86: #not-authorized is retried slowly a bounded number of times, then dead-lettered", async () => {
    const { store, api, logs, sender, enqueue } = setup({ policyRetries: 2 });
    const head = enqueue("d1", "a");
    enqueue("d2", "b");
    const refuse = problemError(
      403,
      { type: `${NS}not-authorized`, retryable: false, strategy: 1 },
      "none",
    );
    api.script = [refuse, refuse, refuse];
    sender.start();
    await sender.drained();
    // 2 retries allowed: the third refusal gives up; the later report was never blocked for good.
    expect(api.calls.map((c) => c.body)).toEqual(["a", "a", "a", "b"]);
    for (const g of gaps(api.calls.slice(0, 3))) expect(g).toBeGreaterThanOrEqual(55);
    expect(store.outboxDeadLetters(5)[0]).toMatchObject({ seq: head });
    expect(store.outboxDeadLetters(5)[0]?.lastError).toContain("#not-authorized");
    expect(store.outboxDeadLetters(5)[0]?.lastError).toContain("after 3 attempts");
    expect(logs.filter((l) => l.kind === "status-delivery-failed")).toHaveLength(2);
  });

  it("item 86: an identity failure is never given up (no WFM we trust has read the report)", async () => {
    const { store, api, sender, enqueue } = setup({
      policyRetries: 1,
      slowBackoff: { baseMs: 5, capMs: 5 },
    });
    enqueue("d1", "a");
    api.script = [identityError(), identityError(), identityError(), identityError()];
    sender.start();
    await sender.drained();
    expect(api.calls).toHaveLength(5);
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 1, deadLettered: 0 });
  });

  it("item 86: backoffStrategy fixed keeps one constant spacing; exponential grows", async () => {
    const fixed = setup({ slowBackoff: { baseMs: 60, capMs: 2_000 } });
    fixed.enqueue("d1", "a");
    const f = problemError(503, { type: "about:blank", retryable: true, strategy: 2 }, "fixed");
    fixed.api.script = [f, f, f, f];
    fixed.sender.start();
    await fixed.sender.drained();
    expect(fixed.api.calls).toHaveLength(5);
    // Without retryAfterSeconds the constant is the slow base (60 ms); an exponential would
    // have reached 480 ms by the fourth retry.
    for (const g of gaps(fixed.api.calls)) {
      expect(g).toBeGreaterThanOrEqual(55);
      expect(g).toBeLessThan(240);
    }

    const exp = setup({ backoff: { baseMs: 20, capMs: 2_000 } });
    exp.enqueue("d1", "a");
    const e = problemError(
      503,
      { type: "about:blank", retryable: true, strategy: 3 },
      "exponential",
    );
    exp.api.script = [e, e, e, e];
    exp.sender.start();
    await exp.sender.drained();
    const g = gaps(exp.api.calls);
    expect(g).toHaveLength(4);
    // random() = 1: ceilings 20, 40, 80, 160 ms.
    expect(g[3] ?? 0).toBeGreaterThanOrEqual(150);
    expect((g[3] ?? 0) - (g[0] ?? 0)).toBeGreaterThanOrEqual(100);
  });

  it("item 86: retryAfterSeconds sets the fixed spacing and the floor of an exponential one", async () => {
    const { api, sender, enqueue } = setup({ random: () => 0 });
    enqueue("d1", "a");
    api.script = [
      problemError(
        503,
        { type: "about:blank", retryable: true, strategy: 3, after: 1n },
        "exponential",
      ),
    ];
    sender.start();
    await sender.drained();
    // random() = 0 would retry at once; the advisory second is the floor.
    expect(gaps(api.calls)[0] ?? 0).toBeGreaterThanOrEqual(990);
  });

  it("item 86: retryable but backoffStrategy none is not retried (dead-lettered with the reason)", async () => {
    const { store, api, sender, enqueue } = setup();
    enqueue("d1", "a");
    enqueue("d1", "b");
    api.script = [problemError(503, { type: "about:blank", retryable: true, strategy: 1 }, "none")];
    sender.start();
    await sender.drained();
    expect(api.calls.map((c) => c.body)).toEqual(["a", "b"]);
    expect(store.outboxDeadLetters(5)[0]?.lastError).toContain("backoffStrategy none");
  });

  it("item 87: sends nothing during downtime and ignores errors that arrive in it", async () => {
    let down = true;
    const { store, api, sender, enqueue } = setup({ isDowntime: () => down });
    enqueue("d1", "a");
    sender.start();
    await sleep(120);
    expect(api.calls).toEqual([]);
    // Downtime begins while a request is in flight and it fails: not recorded, not dead-lettered.
    down = false;
    let fail: (e: unknown) => void = () => {};
    api.script = [() => new Promise((_r, reject) => (fail = reject))];
    await until(() => api.calls.length === 1);
    down = true;
    fail(new WfmRequestError("http", "422", { status: 422, retryable: false, backoff: "none" }));
    await sleep(60);
    expect(store.outboxPending(5)).toMatchObject([
      { body: new TextEncoder().encode("a"), attempts: 0 },
    ]);
    expect(store.outboxStats().deadLettered).toBe(0);
    expect(api.calls).toHaveLength(1);
    down = false;
    await sender.drained();
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 1, deadLettered: 0 });
  });

  it("kick sends a new entry at once; stop waits for the request in flight and records its answer", async () => {
    const { store, api, sender, enqueue } = setup();
    sender.start();
    await sleep(20);
    enqueue("d1", "a");
    sender.kick();
    // Far below idleRecheckMs (10 s): only kick can explain a send this soon.
    expect(await until(() => api.calls.length === 1)).toBeLessThan(3_000);
    await sender.drained();

    let answer: (v: { status: 200 | 201 }) => void = () => {};
    api.script = [() => new Promise((r) => (answer = r))];
    enqueue("d1", "b");
    sender.kick();
    await until(() => api.calls.length === 2);
    let stopped = false;
    const stopping = sender.stop().then(() => {
      stopped = true;
    });
    await sleep(30);
    expect(stopped).toBe(false);
    answer({ status: 200 });
    await stopping;
    expect(store.outboxStats()).toEqual({ pending: 0, delivered: 2, deadLettered: 0 });
  });

  it("a store failure is logged and retried, never an unhandled rejection", async () => {
    const { store, logs, sender } = setup();
    sender.start();
    await sleep(10);
    store.close();
    sender.kick();
    await until(() => logs.some((l) => l.kind === "status-outbox-error"));
    expect(logs.find((l) => l.kind === "status-outbox-error")?.level).toBe("error");
  });
});
