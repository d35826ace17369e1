import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentConfig, defaultConfig } from "../config.js";
import { silentLog } from "../log.js";
import type {
  ApplyOutcome,
  ComponentRef,
  ComponentSpec,
  ObservedComponent,
  Provider,
  RemoveOutcome,
} from "../providers/provider.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import { overallState } from "../status/precedence.js";
import { statusBody } from "../status/status-document.js";
import { Reconciler } from "./reconciler.js";

const DEVICE = "dev-1";
const ID_A = "0b8f7c7e-1111-4d7c-9a55-0a5c2f1e9b10";
const ID_B = "0b8f7c7e-2222-4d7c-9a55-0a5c2f1e9b10";

function yaml(opts: {
  id: string;
  deviceId?: string;
  type?: string;
  components?: string[];
  greeting?: string;
}): Uint8Array {
  const comps = opts.components ?? ["web", "db"];
  const text = `id: ${opts.id}
metadata:
  name: app-${opts.id.slice(9, 13)}
  namespace: margo
  deviceId: ${opts.deviceId ?? DEVICE}
spec:
  applicationId: demo
  deploymentProfile:
    type: ${opts.type ?? "compose"}
    components:
${comps.map((c) => `      - name: ${c}\n        properties:\n          repository: oci://127.0.0.1:5000/demo/${c}\n          revision: 1.0.0\n`).join("")}  parameters:
    greeting:
      value: ${opts.greeting ?? "hello"}
      targets:
        - pointer: GREETING
          components: [${comps[0]}]
`;
  return new TextEncoder().encode(text);
}

const digestOf = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

type Call = { op: "apply" | "remove"; deploymentId: string; component: string };

/** A Provider whose runtime is a Map; outcomes per component can be scripted. */
class FakeProvider implements Provider {
  readonly type = "compose" as const;
  calls: Call[] = [];
  running = new Map<string, string>(); // key -> specHash
  applyResult = new Map<string, ApplyOutcome>();
  /** Components whose apply hangs until aborted. */
  hang = new Set<string>();
  available = true;
  removeFails = false;
  foreign: ComponentRef[] = [];
  /** Latency of every apply/remove (abortable), to measure concurrency. */
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Deployments with a provider call in flight; a second call for one of them is an overlap. */
  busy = new Set<string>();
  overlaps: string[] = [];

  /** Wrap one apply/remove: count concurrency, catch two calls for one deployment, wait. */
  private async occupy(deploymentId: string, signal?: AbortSignal): Promise<void> {
    if (this.busy.has(deploymentId)) this.overlaps.push(deploymentId);
    this.busy.add(deploymentId);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, this.delayMs);
          signal?.addEventListener("abort", () => {
            clearTimeout(t);
            reject(new DOMException("aborted", "AbortError"));
          });
        });
      }
    } finally {
      this.inFlight--;
      this.busy.delete(deploymentId);
    }
  }

  key(r: ComponentRef) {
    return `${r.deploymentId}/${r.componentName}`;
  }
  async probe() {
    return this.available ? { available: true } : { available: false, reason: "engine down" };
  }
  async apply(spec: ComponentSpec, signal: AbortSignal): Promise<ApplyOutcome> {
    this.calls.push({
      op: "apply",
      deploymentId: spec.deploymentId,
      component: spec.componentName,
    });
    await this.occupy(spec.deploymentId, signal);
    if (this.hang.has(spec.componentName)) {
      await new Promise((_r, reject) => {
        signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      });
    }
    const scripted = this.applyResult.get(spec.componentName);
    if (scripted?.state === "failed") return scripted;
    this.running.set(this.key(spec), spec.specHash);
    return { state: "installed" };
  }
  async observe(ref: ComponentRef): Promise<ObservedComponent> {
    const h = this.running.get(this.key(ref));
    return h
      ? { health: "running", detail: "up", specHash: h }
      : { health: "absent", detail: "gone" };
  }
  async remove(ref: ComponentRef, signal?: AbortSignal): Promise<RemoveOutcome> {
    this.calls.push({ op: "remove", deploymentId: ref.deploymentId, component: ref.componentName });
    await this.occupy(ref.deploymentId, signal);
    if (this.removeFails) {
      return { state: "failed", error: { code: "REMOVE_FAILED", message: "engine said no" } };
    }
    this.running.delete(this.key(ref));
    return { state: "removed" };
  }
  async listInstalled(): Promise<ComponentRef[]> {
    const refs: ComponentRef[] = [...this.running.keys()].map((k) => {
      const [deploymentId = "", componentName = ""] = k.split("/");
      return { deploymentId, componentName, deploymentName: "", namespace: "margo" };
    });
    return [...refs, ...this.foreign];
  }
}

interface Report {
  deploymentId: string;
  adoptedManifestVersion: number;
  status: { state: string; error?: { code: string; source: string; message: string } };
  components: Array<{ name: string; state: string; error?: { code: string; source: string } }>;
}

let dir: string;
let store: SqliteAgentStore;
let provider: FakeProvider;
let config: AgentConfig;
let clock: number;
let kicks: number;
let version: bigint;

function reconciler(p: Provider[] = [provider]) {
  return new Reconciler({
    config,
    store,
    providers: p,
    log: silentLog,
    statusBody: (rec) => statusBody(rec, DEVICE),
    onReport: () => kicks++,
    now: () => clock,
    retry: { baseMs: 30_000, capMs: 600_000 },
  });
}

function accept(...docs: Uint8Array[]) {
  version += 1n;
  store.acceptManifest({
    manifestVersion: version,
    etag: `"v${version}"`,
    body: new Uint8Array(),
    deployments: docs.map((y) => {
      const id = new TextDecoder().decode(y).match(/^id: (\S+)/)?.[1] ?? "";
      return { deploymentId: id, digest: digestOf(y), yaml: y };
    }),
  });
}

/** Every report enqueued so far, oldest first (pending ones; nothing delivers in these tests). */
function reports(): Report[] {
  return store
    .outboxPending(1000)
    .map((e) => JSON.parse(new TextDecoder().decode(e.body)) as Report);
}

function summary(r: Report): string {
  return `${r.status.state}[${r.components.map((c) => `${c.name}=${c.state}`).join(",")}]`;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "margo-agent-reconcile-"));
  store = SqliteAgentStore.open(dir);
  provider = new FakeProvider();
  config = defaultConfig(dir, {
    deviceId: DEVICE,
    wfmUrl: "https://127.0.0.1:1",
    identityDir: dir,
  });
  clock = 1_000_000;
  kicks = 0;
  version = 0n;
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Reconciler", () => {
  it("installs components in listed order (item 72) and reports each change once, in order", async () => {
    accept(yaml({ id: ID_A }));
    const r = reconciler();
    await r.runOnce();
    expect(provider.calls).toEqual([
      { op: "apply", deploymentId: ID_A, component: "web" },
      { op: "apply", deploymentId: ID_A, component: "db" },
    ]);
    const got = reports();
    expect(got.map(summary)).toEqual([
      "installing[web=installing,db=pending]",
      "installing[web=installed,db=installing]",
      "installed[web=installed,db=installed]",
    ]);
    // Item 69: every report's overall state is the most severe component state.
    for (const rep of got) {
      expect(rep.status.state).toBe(
        overallState(rep.components.map((c) => ({ state: c.state as never }))),
      );
      expect(rep.adoptedManifestVersion).toBe(1);
    }
    expect(kicks).toBe(3);
    const rec = store.getDeployment(ID_A);
    expect(rec?.state).toBe("installed");
    expect(rec?.appliedDigest).toBe(rec?.digest);
    // A second pass with nothing changed applies nothing and reports nothing.
    await r.runOnce();
    expect(provider.calls).toHaveLength(2);
    expect(reports()).toHaveLength(3);
  });

  it("a failed component stops the rest, carries its error with source = component (item 70), retried with backoff", async () => {
    provider.applyResult.set("web", {
      state: "failed",
      error: { code: "TIMEOUT", message: "not running after 5m0s" },
    });
    accept(yaml({ id: ID_A }));
    const r = reconciler();
    await r.runOnce();
    expect(provider.calls.map((c) => c.component)).toEqual(["web"]);
    const last = reports().at(-1);
    expect(last && summary(last)).toBe("failed[web=failed,db=pending]");
    expect(last?.status.error).toMatchObject({ code: "TIMEOUT", source: "web" });
    expect(last?.components[0]?.error).toMatchObject({ code: "TIMEOUT", source: "web" });
    // Not before the backoff (30 s).
    await r.runOnce();
    expect(provider.calls).toHaveLength(1);
    provider.applyResult.clear();
    clock += 30_001;
    await r.runOnce();
    expect(provider.calls.map((c) => c.component)).toEqual(["web", "web", "db"]);
    expect(reports().map(summary).slice(-3)).toEqual([
      "installing[web=installing,db=pending]",
      "installing[web=installed,db=installing]",
      "installed[web=installed,db=installed]",
    ]);
    await r.stop();
  });

  it("propagates a WORKLOAD_EXITED outcome of a wait component as the failure", async () => {
    provider.applyResult.set("db", {
      state: "failed",
      error: { code: "WORKLOAD_EXITED", message: "db exited with 1" },
    });
    accept(yaml({ id: ID_A }));
    await reconciler().runOnce();
    const last = reports().at(-1);
    expect(last && summary(last)).toBe("failed[web=installed,db=failed]");
    expect(last?.status.error).toMatchObject({ code: "WORKLOAD_EXITED", source: "db" });
  });

  it("repairs drift: a component gone from the runtime is applied again and reported", async () => {
    accept(yaml({ id: ID_A }));
    const r = reconciler();
    await r.runOnce();
    provider.running.delete(`${ID_A}/db`);
    provider.calls = [];
    await r.runOnce();
    expect(provider.calls).toEqual([{ op: "apply", deploymentId: ID_A, component: "db" }]);
    expect(reports().map(summary).slice(3)).toEqual([
      "installing[web=installed,db=installing]",
      "installed[web=installed,db=installed]",
    ]);
    // A foreign spec on the workload is drift too.
    provider.running.set(`${ID_A}/web`, "sha256:someone-else");
    provider.calls = [];
    await r.runOnce();
    expect(provider.calls.map((c) => c.component)).toEqual(["web"]);
  });

  it("an update re-applies only components whose spec changed", async () => {
    accept(yaml({ id: ID_A }));
    const r = reconciler();
    await r.runOnce();
    provider.calls = [];
    accept(yaml({ id: ID_A, greeting: "bonjour" }));
    await r.runOnce();
    expect(provider.calls).toEqual([{ op: "apply", deploymentId: ID_A, component: "web" }]);
    const after = reports().slice(3);
    expect(after.map(summary)).toEqual([
      "installing[web=installing,db=installed]",
      "installed[web=installed,db=installed]",
    ]);
    expect(after.every((x) => x.adoptedManifestVersion === 2)).toBe(true);
  });

  it("removal (item 55): removing, components in reverse order, removed, then forgotten", async () => {
    accept(yaml({ id: ID_A }), yaml({ id: ID_B, components: ["solo"] }));
    const r = reconciler();
    await r.runOnce();
    provider.calls = [];
    accept(yaml({ id: ID_B, components: ["solo"] }));
    await r.runOnce();
    expect(provider.calls).toEqual([
      { op: "remove", deploymentId: ID_A, component: "db" },
      { op: "remove", deploymentId: ID_A, component: "web" },
    ]);
    const ofA = reports().filter((x) => x.deploymentId === ID_A);
    expect(ofA.map(summary).slice(-3)).toEqual([
      "removing[web=removing,db=removing]",
      "removing[web=removing,db=removed]",
      "removed[web=removed,db=removed]",
    ]);
    expect(ofA.at(-1)?.adoptedManifestVersion).toBe(2);
    expect(store.getDeployment(ID_A)).toBeUndefined();
    expect(store.getDeployment(ID_B)?.state).toBe("installed");
  });

  it("a removal failure reports failed with REMOVE_FAILED and is retried with backoff", async () => {
    accept(yaml({ id: ID_A, components: ["solo"] }));
    const r = reconciler();
    await r.runOnce();
    provider.removeFails = true;
    accept();
    await r.runOnce();
    const last = reports().at(-1);
    expect(last && summary(last)).toBe("failed[solo=failed]");
    expect(last?.status.error).toMatchObject({ code: "REMOVE_FAILED", source: "solo" });
    provider.removeFails = false;
    await r.runOnce();
    expect(store.getDeployment(ID_A)).toBeDefined();
    clock += 30_001;
    await r.runOnce();
    expect(reports().map(summary).slice(-2)).toEqual([
      "removing[solo=removing]",
      "removed[solo=removed]",
    ]);
    expect(store.getDeployment(ID_A)).toBeUndefined();
  });

  it("resumes an interrupted install without repeating the installing report", async () => {
    provider.hang.add("db");
    accept(yaml({ id: ID_A }));
    const first = reconciler();
    first.start();
    await waitFor(() => provider.calls.some((c) => c.component === "db"));
    await first.stop();
    const before = reports().map(summary);
    expect(before).toEqual([
      "installing[web=installing,db=pending]",
      "installing[web=installed,db=installing]",
    ]);
    expect(store.getDeployment(ID_A)?.state).toBe("installing");
    // "Restart": a new reconciler over the reopened store (the fake runtime kept web running).
    store.close();
    store = SqliteAgentStore.open(dir);
    provider.hang.clear();
    provider.calls = [];
    await reconciler().runOnce();
    expect(provider.calls.map((c) => c.component)).toEqual(["db"]);
    expect(reports().map(summary)).toEqual([...before, "installed[web=installed,db=installed]"]);
  });

  it("item 57: deviceId ending in /* fails with 103, source = own device id; nothing applied", async () => {
    accept(yaml({ id: ID_A, deviceId: "gw/*" }));
    const r = reconciler();
    await r.runOnce();
    expect(provider.calls).toEqual([]);
    const last = reports().at(-1);
    expect(last && summary(last)).toBe("failed[web=failed,db=failed]");
    expect(last?.status.error).toMatchObject({ code: "103", source: DEVICE });
    await r.runOnce();
    expect(reports()).toHaveLength(1);
  });

  it("another device's deployment fails with 101, source = own device id", async () => {
    accept(yaml({ id: ID_A, deviceId: "dev-2" }));
    await reconciler().runOnce();
    expect(provider.calls).toEqual([]);
    expect(reports().at(-1)?.status.error).toMatchObject({ code: "101", source: DEVICE });
  });

  it("no provider for the type, or its runtime unavailable: RUNTIME_UNAVAILABLE, source = metadata.name", async () => {
    accept(yaml({ id: ID_A, type: "helm" }));
    const r = reconciler();
    await r.runOnce();
    expect(reports().at(-1)?.status.error).toMatchObject({
      code: "RUNTIME_UNAVAILABLE",
      source: `app-${ID_A.slice(9, 13)}`,
    });
    provider.available = false;
    accept(yaml({ id: ID_B, components: ["solo"] }));
    await r.runOnce();
    const ofB = reports().filter((x) => x.deploymentId === ID_B);
    expect(ofB.at(-1)?.status.error?.code).toBe("RUNTIME_UNAVAILABLE");
    expect(provider.calls).toEqual([]);
    provider.available = true;
    clock += 30_001;
    await r.runOnce();
    expect(store.getDeployment(ID_B)?.state).toBe("installed");
  });

  it("orphans (no record) are removed silently", async () => {
    accept(yaml({ id: ID_A, components: ["solo"] }));
    provider.foreign.push({
      deploymentId: "orphan-id",
      componentName: "x",
      deploymentName: "old",
      namespace: "margo",
    });
    await reconciler().runOnce();
    expect(provider.calls).toContainEqual({
      op: "remove",
      deploymentId: "orphan-id",
      component: "x",
    });
    expect(provider.calls).not.toContainEqual(
      expect.objectContaining({ op: "remove", deploymentId: ID_A }),
    );
    expect(reports().every((x) => x.deploymentId === ID_A)).toBe(true);
  });
});

describe("Reconciler, concurrent deployments", () => {
  const idOf = (i: number) => `0b8f7c7e-${String(i).padStart(4, "0")}-4d7c-9a55-0a5c2f1e9b10`;

  it("N deployments finish in about N/maxParallelDeployments of the serial time; order, one worker per deployment and reports kept", async () => {
    const n = 8;
    provider.delayMs = 100;
    accept(...Array.from({ length: n }, (_, i) => yaml({ id: idOf(i) })));
    const t0 = Date.now();
    await reconciler().runOnce();
    const took = Date.now() - t0;
    const serial = n * 2 * provider.delayMs; // two components each, one after another
    // Four at a time: two rounds of two applies, so at least 400 ms and well under serial.
    expect(took).toBeGreaterThanOrEqual(2 * 2 * provider.delayMs - 10);
    expect(took).toBeLessThan(serial / 2);
    expect(provider.maxInFlight).toBe(config.maxParallelDeployments);
    expect(provider.overlaps).toEqual([]);
    for (let i = 0; i < n; i++) {
      const id = idOf(i);
      const applied = provider.calls.filter((c) => c.deploymentId === id).map((c) => c.component);
      expect(applied).toEqual(["web", "db"]);
      // Item 65: each deployment's reports in the order they happened, none repeated.
      expect(
        reports()
          .filter((r) => r.deploymentId === id)
          .map(summary),
      ).toEqual([
        "installing[web=installing,db=pending]",
        "installing[web=installed,db=installing]",
        "installed[web=installed,db=installed]",
      ]);
      expect(store.getDeployment(id)?.state).toBe("installed");
    }
  });

  it("maxParallelDeployments 1 works on one deployment at a time", async () => {
    config = { ...config, maxParallelDeployments: 1 };
    provider.delayMs = 20;
    accept(...Array.from({ length: 3 }, (_, i) => yaml({ id: idOf(i), components: ["solo"] })));
    await reconciler().runOnce();
    expect(provider.maxInFlight).toBe(1);
    expect(reports().map((r) => r.status.state)).toEqual([
      "installing",
      "installed",
      "installing",
      "installed",
      "installing",
      "installed",
    ]);
  });

  it("a hanging install holds back no other deployment; its undeploy aborts it and is not undone", async () => {
    provider.hang.add("db");
    accept(yaml({ id: ID_A }));
    const r = reconciler();
    r.start();
    await waitFor(() => provider.calls.some((c) => c.component === "db"));
    accept(yaml({ id: ID_A }), yaml({ id: ID_B, components: ["solo"] }));
    r.kick();
    await waitFor(() => store.getDeployment(ID_B)?.state === "installed");
    expect(store.getDeployment(ID_A)?.state).toBe("installing");
    // Undeploy A while its db apply hangs: the worker is aborted and the removal follows.
    accept(yaml({ id: ID_B, components: ["solo"] }));
    r.kick();
    await waitFor(() => store.getDeployment(ID_A) === undefined);
    await r.stop();
    expect(
      reports()
        .filter((x) => x.deploymentId === ID_A)
        .map(summary),
    ).toEqual([
      "installing[web=installing,db=pending]",
      "installing[web=installed,db=installing]",
      "removing[web=removing,db=removing]",
      "removing[web=removing,db=removed]",
      "removed[web=removed,db=removed]",
    ]);
    expect(provider.running.has(`${ID_A}/web`)).toBe(false);
    expect(provider.overlaps).toEqual([]);
  });

  it("a new revision accepted during an apply is installed, not overwritten by the old one", async () => {
    provider.delayMs = 150;
    accept(yaml({ id: ID_A, components: ["solo"] }));
    const r = reconciler();
    r.start();
    await waitFor(() => provider.calls.length === 1);
    const next = yaml({ id: ID_A, components: ["solo"], greeting: "bye" });
    accept(next);
    r.kick();
    await waitFor(() => store.getDeployment(ID_A)?.appliedDigest === digestOf(next));
    await r.stop();
    const rec = store.getDeployment(ID_A);
    expect(rec?.digest).toBe(digestOf(next));
    expect(rec?.state).toBe("installed");
    const last = reports().at(-1);
    expect(last && summary(last)).toBe("installed[solo=installed]");
    expect(last?.adoptedManifestVersion).toBe(2);
    expect(provider.overlaps).toEqual([]);
  });
});

async function waitFor(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
