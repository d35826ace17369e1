import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeDeviceCapabilities } from "@margo/proto/wire";
import { afterAll, describe, expect, it } from "vitest";
import { defaultConfig } from "../config.js";
import type { LogEvent } from "../log.js";
import type { Provider, ProviderProbe } from "../providers/provider.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import type { HostFacts } from "./host-facts.js";
import { CapabilitiesReporter } from "./reporter.js";

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
