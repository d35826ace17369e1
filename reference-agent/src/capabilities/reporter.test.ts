import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProblemDetail } from "@margo/proto";
import { decodeDeviceCapabilities } from "@margo/proto/wire";
import { afterAll, describe, expect, it } from "vitest";
import { defaultConfig } from "../config.js";
import type { LogEvent } from "../log.js";
import type { Provider, ProviderProbe } from "../providers/provider.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import type { HostFacts } from "./host-facts.js";
import { CapabilitiesReporter, CapabilitiesRetry, isBodyRefusal } from "./reporter.js";
import { watchForResend } from "./resend-triggers.js";

const dirs: string[] = [];
const stores: SqliteAgentStore[] = [];
afterAll(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Records PUTs; `fail` makes the next one throw like the transport does. */
function fakeApi() {
  const puts: Array<{ deviceId: string; body: Uint8Array }> = [];
  let fail: WfmRequestError | undefined;
  const api = {
    async putCapabilities(deviceId: string, body: Uint8Array) {
      if (fail) {
        const e = fail;
        fail = undefined;
        throw e;
      }
      puts.push({ deviceId, body });
      return { status: puts.length === 1 ? 201 : 200 } as const;
    },
  } as unknown as WfmApi;
  return { api, puts, failNext: (e: WfmRequestError) => (fail = e) };
}

function fakeProvider(type: "compose" | "helm", probe: () => ProviderProbe): Provider {
  return { type, probe: async () => probe() } as unknown as Provider;
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "margo-reporter-"));
  dirs.push(dir);
  const config = defaultConfig(dir, {
    deviceId: "edge-1",
    wfmUrl: "https://127.0.0.1:1",
    identityDir: dir,
  });
  const store = SqliteAgentStore.open(dir);
  stores.push(store);
  let facts: HostFacts = {
    cpus: [{ cores: 2, architecture: "amd64" }],
    memory: "1024Mi",
    interfaces: [{ type: "ethernet" }],
    peripherals: [],
  };
  let helm: ProviderProbe = { available: false, reason: "no kubeconfig" };
  const { api, puts, failNext } = fakeApi();
  const events: LogEvent[] = [];
  const providers = [
    fakeProvider("compose", () => ({ available: true, version: "docker 20.10" })),
    fakeProvider("helm", () => helm),
  ];
  const make = () =>
    new CapabilitiesReporter(
      api,
      store,
      config,
      providers,
      (e) => events.push(e),
      () => facts,
    );
  return {
    store,
    puts,
    events,
    failNext,
    make,
    setFacts: (f: HostFacts) => (facts = f),
    setHelm: (p: ProviderProbe) => (helm = p),
  };
}

const typesOf = (body: Uint8Array | undefined) =>
  body ? decodeDeviceCapabilities(body).value?.properties?.supportedDeploymentTypes : undefined;

describe("CapabilitiesReporter (item 25)", () => {
  it("item 25: forced first, unchanged second, sent again after a probe or host change", async () => {
    const t = setup();
    const r = t.make();
    expect(await r.report(true)).toBe("sent");
    expect(t.puts).toHaveLength(1);
    expect(t.puts[0]?.deviceId).toBe("edge-1");
    expect(typesOf(t.puts[0]?.body)).toEqual(["compose"]);
    expect(await r.report(false)).toBe("unchanged");
    expect(t.puts).toHaveLength(1);

    t.setHelm({ available: true, version: "helm 3.15" });
    expect(await r.report(false)).toBe("sent");
    expect(typesOf(t.puts[1]?.body)).toEqual(["compose", "helm"]);
    expect(r.runtimes().map((p) => [p.type, p.available])).toEqual([
      ["compose", true],
      ["helm", true],
    ]);

    t.setFacts({
      cpus: [{ cores: 4, architecture: "amd64" }],
      memory: "2048Mi",
      interfaces: [],
      peripherals: [],
    });
    expect(await r.report(false)).toBe("sent");
    expect(decodeDeviceCapabilities(t.puts[2]?.body ?? "").value?.properties?.memory).toBe(
      "2048Mi",
    );
    expect(await r.report(false)).toBe("unchanged");
  });

  it("item 25: a restart with the same facts still forces one PUT (the digest survives in the store)", async () => {
    const t = setup();
    expect(await t.make().report(true)).toBe("sent");
    const again = t.make();
    expect(await again.report(false)).toBe("unchanged");
    expect(await again.report(true)).toBe("sent");
    expect(t.puts).toHaveLength(2);
  });

  it("a refused PUT throws and saves no digest, so the next check sends it again", async () => {
    const t = setup();
    const r = t.make();
    t.failNext(
      new WfmRequestError("network", "connection refused", {
        retryable: true,
        backoff: "exponential",
      }),
    );
    await expect(r.report(true)).rejects.toBeInstanceOf(WfmRequestError);
    expect(t.store.readCapabilitiesDigest("edge-1")).toBeUndefined();
    expect(await r.report(false)).toBe("sent");
    expect(t.store.readCapabilitiesDigest("edge-1")).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("item 30: no runtime available logs an error and reports no deployment types; a throwing probe counts as unavailable", async () => {
    const t = setup();
    const { api, puts } = fakeApi();
    const config = defaultConfig(tmpdir(), {
      deviceId: "edge-2",
      wfmUrl: "https://127.0.0.1:1",
      identityDir: tmpdir(),
    });
    const broken = {
      type: "compose",
      probe: async () => {
        throw new Error("socket gone");
      },
    } as unknown as Provider;
    const r = new CapabilitiesReporter(
      api,
      t.store,
      config,
      [broken],
      (e) => t.events.push(e),
      () => ({ cpus: [{ cores: 1 }], interfaces: [], peripherals: [] }),
    );
    expect(await r.report(true)).toBe("sent");
    const json = JSON.parse(Buffer.from(puts[0]?.body ?? []).toString("utf8"));
    expect(json.properties).not.toHaveProperty("supportedDeploymentTypes");
    expect(decodeDeviceCapabilities(puts[0]?.body ?? "").problems).toEqual([]);
    expect(t.events.some((e) => e.kind === "capabilities-no-runtime" && e.level === "error")).toBe(
      true,
    );
    expect(r.runtimes()).toEqual([{ type: "compose", available: false, reason: "socket gone" }]);
  });
});

const NS = "https://docs.margo.org/specification/problem-types#";

/** An error answer as the transport builds it (strategy numbers as the generated enum). */
function problemError(
  status: number,
  p: { type?: string; retryable?: boolean; strategy?: 1 | 2 | 3; after?: number } = {},
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
  return new WfmRequestError("http", `${status} ${problem.type}`, {
    status,
    problem,
    retryable: p.retryable ?? false,
    backoff: p.strategy === 2 ? "fixed" : p.strategy === 3 ? "exponential" : "none",
  });
}

describe("capabilities failures (items 25, 86)", () => {
  it("a body refused for good (#semantic-error) is not re-sent by the periodic check, only when forced or changed", async () => {
    const t = setup();
    const r = t.make();
    t.failNext(problemError(422, { type: `${NS}semantic-error` }));
    await expect(r.report(true)).rejects.toBeInstanceOf(WfmRequestError);
    expect(await r.report(false)).toBe("unchanged");
    expect(t.puts).toHaveLength(0);
    t.setHelm({ available: true });
    expect(await r.report(false)).toBe("sent");
    expect(t.puts).toHaveLength(1);
  });

  it("a retryable refusal is no body refusal: the next check sends the same bytes", async () => {
    const t = setup();
    const r = t.make();
    t.failNext(problemError(503, { retryable: true, strategy: 3 }));
    await expect(r.report(true)).rejects.toBeInstanceOf(WfmRequestError);
    expect(await r.report(false)).toBe("sent");
  });

  it("isBodyRefusal decides by Margo type, by status only without one", () => {
    expect(isBodyRefusal(problemError(422, { type: `${NS}semantic-error` }))).toBe(true);
    expect(isBodyRefusal(problemError(400, { type: `${NS}invalid-request` }))).toBe(true);
    expect(isBodyRefusal(problemError(400, { type: `${NS}gateway-not-found` }))).toBe(false);
    expect(isBodyRefusal(problemError(422))).toBe(true);
    expect(isBodyRefusal(problemError(422, { retryable: true }))).toBe(false);
    expect(isBodyRefusal(problemError(404))).toBe(false);
  });

  it("CapabilitiesRetry: gateway-not-found, not-authorized and identity hold and retry slowly; semantic-error and backoffStrategy none give up", () => {
    const mk = () => new CapabilitiesRetry({ random: () => 0.5, slowBaseMs: 10_000 });
    expect(mk().decide(problemError(404, { type: `${NS}gateway-not-found` }))).toMatchObject({
      action: "retry",
      delayMs: 5_000,
    });
    expect(mk().decide(problemError(403, { type: `${NS}not-authorized` }))).toMatchObject({
      action: "retry",
    });
    expect(mk().decide(problemError(403))).toMatchObject({ action: "retry" });
    expect(
      mk().decide(new WfmRequestError("identity", "x", { retryable: false, backoff: "none" })),
    ).toMatchObject({ action: "retry" });
    for (const e of [
      problemError(422, { type: `${NS}semantic-error` }),
      problemError(400, { type: `${NS}invalid-request` }),
      problemError(503, { retryable: true, strategy: 1 }),
      problemError(409),
      new WfmRequestError("protocol", "202", { retryable: false, backoff: "none" }),
    ]) {
      expect(mk().decide(e)).toMatchObject({ action: "give-up" });
    }
  });

  it("CapabilitiesRetry: network and retryable answers use the retry policy (fixed = retryAfterSeconds)", () => {
    const r = new CapabilitiesRetry({ random: () => 0.5 });
    const net = new WfmRequestError("network", "x", { retryable: true, backoff: "exponential" });
    expect([r.decide(net), r.decide(net)].map((d) => d.action === "retry" && d.delayMs)).toEqual([
      500, 1_000,
    ]);
    expect(r.decide(problemError(503, { retryable: true, strategy: 2, after: 6 }))).toMatchObject({
      action: "retry",
      delayMs: 6_000,
    });
  });
});

describe("watchForResend (item 25)", () => {
  /** A transport whose next answer the test sets. */
  function transport() {
    let next: Error | undefined;
    const calls: string[] = [];
    const answer = async <T>(name: string, v: T): Promise<T> => {
      calls.push(name);
      const e = next;
      next = undefined;
      if (e) throw e;
      return v;
    };
    const api: WfmApi = {
      putCapabilities: () => answer("put", { status: 200 as const }),
      deleteCapabilities: () => answer("delete", undefined),
      getManifest: () => answer("manifest", { status: 304 as const }),
      getArtifact: () => answer("artifact", new Uint8Array()),
      postStatus: () => answer("status", { status: 201 as const }),
      notBefore: () => 0,
      resetConnections: () => {},
      close: () => {},
    };
    return { api, calls, failNext: (e: Error) => (next = e) };
  }
  const net = () =>
    new WfmRequestError("network", "reset", { retryable: true, backoff: "exponential" });

  it("the first answer after a run of network failures asks for a re-send, once", async () => {
    const t = transport();
    const why: string[] = [];
    const api = watchForResend(t.api, (w) => why.push(w));
    await api.getManifest();
    expect(why).toEqual([]);
    t.failNext(net());
    await expect(api.postStatus("d", new Uint8Array())).rejects.toThrow();
    t.failNext(net());
    await expect(api.getManifest()).rejects.toThrow();
    expect(why).toEqual([]);
    // An error answer is an answer too: the WFM is back.
    t.failNext(problemError(409));
    await expect(api.postStatus("d", new Uint8Array())).rejects.toThrow();
    await api.getManifest();
    expect(why).toEqual(["wfm-reachable-again"]);
    expect(t.calls).toEqual(["manifest", "status", "manifest", "status", "manifest"]);
  });

  it("the capabilities PUT ending an outage is the re-send itself: no trigger", async () => {
    const t = transport();
    const why: string[] = [];
    const api = watchForResend(t.api, (w) => why.push(w));
    t.failNext(net());
    await expect(api.getManifest()).rejects.toThrow();
    await api.putCapabilities("dev", new Uint8Array());
    await api.getManifest();
    expect(why).toEqual([]);
  });

  it("#device-not-found and #gateway-not-found on other calls ask for a re-send; other 404s do not", async () => {
    const t = transport();
    const why: string[] = [];
    const api = watchForResend(t.api, (w) => why.push(w));
    t.failNext(problemError(404, { type: `${NS}deployment-not-found` }));
    await expect(api.getArtifact("/x")).rejects.toThrow();
    expect(why).toEqual([]);
    t.failNext(problemError(404, { type: `${NS}device-not-found` }));
    await expect(api.postStatus("d", new Uint8Array())).rejects.toThrow();
    t.failNext(problemError(404, { type: `${NS}gateway-not-found` }));
    await expect(api.getManifest()).rejects.toThrow();
    t.failNext(problemError(404, { type: `${NS}gateway-not-found` }));
    await expect(api.putCapabilities("dev", new Uint8Array())).rejects.toThrow();
    expect(why).toEqual(["device-unknown", "device-unknown"]);
  });
});
