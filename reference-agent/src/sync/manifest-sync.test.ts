import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProblemDetail } from "@margo/proto";
import { writeTarGz } from "@margo/proto/package";
import { canonicalJsonBytes } from "@margo/proto/wire";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentConfig, defaultConfig } from "../config.js";
import { type LogEvent, silentLog } from "../log.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import { type ManifestResponse, type WfmApi, WfmRequestError } from "../wfm/api.js";
import { ManifestSync } from "./manifest-sync.js";

const ID_A = "0b8f7c7e-1111-4d7c-9a55-0a5c2f1e9b10";
const ID_B = "0b8f7c7e-2222-4d7c-9a55-0a5c2f1e9b10";
const ID_C = "0b8f7c7e-3333-4d7c-9a55-0a5c2f1e9b10";

const enc = (s: string) => new TextEncoder().encode(s);
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function yaml(id: string, rev = "1.0.0", yamlId = id): Uint8Array {
  return enc(`id: ${yamlId}
metadata:
  name: app
  namespace: margo
  deviceId: dev-1
spec:
  applicationId: demo
  deploymentProfile:
    type: compose
    components:
      - name: web
        properties:
          repository: oci://127.0.0.1:5000/demo/web
          revision: ${rev}
  parameters:
    unknownToTheDescription:
      value: 1
      targets: [{pointer: X, components: [web]}]
  x-acme-extensions:
    whatever: true
`);
}

/** A WFM serving artifacts from maps and counting what was asked for. */
class FakeWfm implements WfmApi {
  manifest: Uint8Array | undefined;
  etag = "";
  artifacts = new Map<string, Uint8Array>();
  requests: string[] = [];
  manifestError: Error | undefined;
  async putCapabilities(): Promise<{ status: 200 | 201 }> {
    return { status: 200 };
  }
  async deleteCapabilities() {}
  async getManifest(ifNoneMatch?: string): Promise<ManifestResponse> {
    this.requests.push(`manifest ${ifNoneMatch ?? "-"}`);
    if (this.manifestError) throw this.manifestError;
    if (!this.manifest) throw new Error("no manifest");
    if (ifNoneMatch === this.etag) return { status: 304 };
    return { status: 200, body: this.manifest, etag: this.etag, contentType: undefined };
  }
  async getArtifact(url: string): Promise<Uint8Array> {
    this.requests.push(url);
    const b = this.artifacts.get(url);
    if (!b) {
      throw new WfmRequestError("http", "404", {
        status: 404,
        retryable: false,
        backoff: "none",
      });
    }
    return b;
  }
  async postStatus(): Promise<{ status: 200 | 201 }> {
    return { status: 201 };
  }
  notBefore() {
    return 0;
  }
  resetConnections() {}
  close() {}

  /**
   * Serve a manifest of these deployments (raw JSON so tests can break any rule); the bundle
   * holds their YAMLs. `sizes` overrides advertised sizes (undefined = omit).
   */
  async publish(
    version: number,
    docs: Array<[string, Uint8Array]>,
    opts: {
      sizes?: Record<string, number | undefined>;
      bundleSize?: number | null;
      digestOf?: Record<string, string>;
    } = {},
  ) {
    const bundleBytes = docs.length
      ? await writeTarGz(
          docs.map(([id, y], i) => ({ path: `d${i}-${id.slice(0, 4)}.yaml`, content: y })),
        )
      : undefined;
    const deployments = docs.map(([id, y]) => {
      const digest = opts.digestOf?.[id] ?? sha(y);
      const url = `/api/v1/deployments/${id}/${digest}`;
      this.artifacts.set(url, y);
      const size = opts.sizes && id in opts.sizes ? opts.sizes[id] : y.length;
      return { deploymentId: id, digest, ...(size !== undefined ? { sizeBytes: size } : {}), url };
    });
    let bundle: Record<string, unknown> | null = null;
    if (bundleBytes) {
      const digest = sha(bundleBytes);
      const url = `/api/v1/bundles/${digest}`;
      this.artifacts.set(url, bundleBytes);
      bundle = {
        mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
        digest,
        ...(opts.bundleSize === null ? {} : { sizeBytes: opts.bundleSize ?? bundleBytes.length }),
        url,
      };
    }
    this.manifest = canonicalJsonBytes({ manifestVersion: version, bundle, deployments });
    this.etag = `"${sha(this.manifest)}"`;
  }
}

let dir: string;
let store: SqliteAgentStore;
let wfm: FakeWfm;
let config: AgentConfig;
let accepted: number;

function sync() {
  return new ManifestSync({
    config,
    api: wfm,
    store,
    log: silentLog,
    onAccepted: () => accepted++,
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "margo-agent-sync-"));
  store = SqliteAgentStore.open(dir);
  wfm = new FakeWfm();
  config = defaultConfig(dir, {
    deviceId: "dev-1",
    wfmUrl: "https://127.0.0.1:1",
    identityDir: dir,
  });
  accepted = 0;
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("ManifestSync", () => {
  it("accepts a manifest, persists version and ETag, then sends If-None-Match and gets 304 (item 54)", async () => {
    await wfm.publish(5, [[ID_A, yaml(ID_A)]]);
    const s = sync();
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", manifestVersion: 5n });
    expect(accepted).toBe(1);
    expect(store.readSync()).toMatchObject({ manifestVersion: 5n, etag: wfm.etag });
    expect(store.getDeployment(ID_A)?.yaml).toEqual(yaml(ID_A));
    expect(await s.syncOnce()).toEqual({ result: "unchanged" });
    expect(wfm.requests.at(-1)).toBe(`manifest ${wfm.etag}`);
    expect(accepted).toBe(1);
  });

  it("item 51: a manifestVersion not above the stored one is rejected, store untouched", async () => {
    await wfm.publish(5, [[ID_A, yaml(ID_A)]]);
    const s = sync();
    await s.syncOnce();
    for (const v of [5, 4]) {
      await wfm.publish(v, [[ID_B, yaml(ID_B)]]);
      expect(await s.syncOnce()).toMatchObject({
        result: "rejected",
        kind: "manifest-version-regressed",
      });
    }
    expect(store.readSync().manifestVersion).toBe(5n);
    expect(store.getDeployment(ID_B)).toBeUndefined();
    expect(store.getDeployment(ID_A)?.desired).toBe("present");
    expect(store.recentErrors(5)[0]?.kind).toBe("manifest-version-regressed");
    expect(accepted).toBe(1);
  });

  it("item 52: one tampered deployment aborts the whole update; nothing of it is stored", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]]);
    const s = sync();
    await s.syncOnce();
    await wfm.publish(
      2,
      [
        [ID_A, yaml(ID_A, "2.0.0")],
        [ID_B, yaml(ID_B)],
        [ID_C, yaml(ID_C)],
      ],
      { bundleSize: null },
    );
    // Serve other bytes under B's digest URL.
    const bUrl = [...wfm.artifacts.keys()].find((u) => u.includes(ID_B)) as string;
    wfm.artifacts.set(bUrl, yaml(ID_B, "6.6.6"));
    const out = await s.syncOnce();
    expect(out).toMatchObject({ result: "rejected", kind: "digest-mismatch" });
    expect(store.readSync().manifestVersion).toBe(1n);
    expect(store.getDeployment(ID_A)?.yaml).toEqual(yaml(ID_A));
    expect(store.getDeployment(ID_B)).toBeUndefined();
    expect(store.getDeployment(ID_C)).toBeUndefined();
    expect(store.recentErrors(1)[0]?.kind).toBe("digest-mismatch");
  });

  it("item 52: a tampered bundle aborts too", async () => {
    await wfm.publish(
      1,
      [
        [ID_A, yaml(ID_A)],
        [ID_B, yaml(ID_B)],
      ],
      { bundleSize: 1 },
    );
    const bundleUrl = [...wfm.artifacts.keys()].find((u) => u.includes("bundles")) as string;
    wfm.artifacts.set(bundleUrl, await writeTarGz([{ path: "x.yaml", content: yaml(ID_A) }]));
    expect(await sync().syncOnce()).toMatchObject({ result: "rejected", kind: "digest-mismatch" });
    expect(store.listDeployments()).toEqual([]);
  });

  it("item 53: a digest of another algorithm makes the manifest invalid", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]], {
      digestOf: { [ID_A]: `sha512:${"a".repeat(128)}` },
      bundleSize: null,
    });
    const out = await sync().syncOnce();
    expect(out).toMatchObject({ result: "rejected", kind: "unsupported-digest-algorithm" });
    expect(store.readSync().manifestVersion).toBeUndefined();
    expect(wfm.requests.filter((r) => !r.startsWith("manifest"))).toEqual([]);
  });

  it("fetches the bundle when it moves fewer bytes, per-deployment otherwise; members matched by digest", async () => {
    const docs: Array<[string, Uint8Array]> = [
      [ID_A, yaml(ID_A)],
      [ID_B, yaml(ID_B)],
      [ID_C, yaml(ID_C)],
    ];
    await wfm.publish(1, docs);
    // The gzip bundle of three similar YAMLs is smaller than their sum: bundle.
    const s = sync();
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", fetched: "bundle" });
    expect(wfm.requests.filter((r) => r.includes("/deployments/"))).toEqual([]);
    expect(
      store
        .listDeployments()
        .map((d) => d.deploymentId)
        .sort(),
    ).toEqual([ID_A, ID_B, ID_C]);
    // One changed: only it is fetched, individually, when it is smaller than the bundle.
    wfm.requests = [];
    await wfm.publish(
      2,
      [
        docs[0] as [string, Uint8Array],
        docs[1] as [string, Uint8Array],
        [ID_C, yaml(ID_C, "3.0.0")],
      ],
      { bundleSize: 10_000 },
    );
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", fetched: "deployments" });
    expect(wfm.requests.filter((r) => !r.startsWith("manifest"))).toEqual([
      expect.stringContaining(`/api/v1/deployments/${ID_C}/`),
    ]);
    expect(store.getDeployment(ID_C)?.yaml).toEqual(yaml(ID_C, "3.0.0"));
  });

  it("item 58: wrong sizeBytes (with correct digests) still accepted; missing sizes mean per-deployment", async () => {
    await wfm.publish(
      1,
      [
        [ID_A, yaml(ID_A)],
        [ID_B, yaml(ID_B)],
      ],
      {
        sizes: { [ID_A]: 1, [ID_B]: 999_999 },
        bundleSize: 7,
      },
    );
    expect(await sync().syncOnce()).toMatchObject({ result: "accepted", fetched: "bundle" });
    rmSync(dir, { recursive: true, force: true });
    store.close();
    store = SqliteAgentStore.open(dir);
    wfm.requests = [];
    await wfm.publish(
      1,
      [
        [ID_A, yaml(ID_A)],
        [ID_B, yaml(ID_B)],
      ],
      {
        sizes: { [ID_A]: undefined },
        bundleSize: 1,
      },
    );
    expect(await sync().syncOnce()).toMatchObject({ result: "accepted", fetched: "deployments" });
    expect(wfm.requests.some((r) => r.includes("bundles"))).toBe(false);
  });

  it("item 55: a 404 on a digest URL aborts the update and is never a removal", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]]);
    const s = sync();
    await s.syncOnce();
    await wfm.publish(
      2,
      [
        [ID_A, yaml(ID_A, "2.0.0")],
        [ID_B, yaml(ID_B)],
      ],
      { bundleSize: null },
    );
    for (const u of [...wfm.artifacts.keys()]) if (u.includes(ID_A)) wfm.artifacts.delete(u);
    expect(await s.syncOnce()).toMatchObject({ result: "rejected", kind: "artifact-not-found" });
    const a = store.getDeployment(ID_A);
    expect(a?.desired).toBe("present");
    expect(a?.yaml).toEqual(yaml(ID_A));
    expect(store.readSync().manifestVersion).toBe(1n);
  });

  it("item 46: a YAML whose id differs from deploymentId is rejected", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A, "1.0.0", ID_B)]], { bundleSize: null });
    expect(await sync().syncOnce()).toMatchObject({ result: "rejected", kind: "manifest-invalid" });
    expect(store.listDeployments()).toEqual([]);
  });

  it("a deployment that left the manifest is marked absent (the only removal signal)", async () => {
    await wfm.publish(1, [
      [ID_A, yaml(ID_A)],
      [ID_B, yaml(ID_B)],
    ]);
    const s = sync();
    await s.syncOnce();
    await wfm.publish(2, [[ID_B, yaml(ID_B)]]);
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", fetched: "none" });
    expect(store.getDeployment(ID_A)?.desired).toBe("absent");
    expect(store.getDeployment(ID_B)?.desired).toBe("present");
  });

  it("during downtime sends nothing (item 87)", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]]);
    const s = new ManifestSync({
      config: { ...config, downtime: [{ start: "00:00", end: "23:59" }] },
      api: wfm,
      store,
      log: silentLog,
      onAccepted: () => accepted++,
      now: () => Date.UTC(2026, 0, 1, 12, 0),
    });
    expect(await s.syncOnce()).toEqual({ result: "skipped", reason: "downtime" });
    expect(wfm.requests).toEqual([]);
  });

  it("a WFM failing its identity check is recorded as wfm-identity-mismatch", async () => {
    wfm.manifestError = new WfmRequestError("identity", "spiffe id mismatch", {
      retryable: false,
      backoff: "none",
      rule: "spiffe-id-mismatch",
    });
    expect(await sync().syncOnce()).toMatchObject({ result: "error" });
    expect(store.recentErrors(1)[0]?.kind).toBe("wfm-identity-mismatch");
  });

  it("syncNow during a sync runs exactly one more", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]]);
    const s = sync();
    s.start();
    s.syncNow();
    s.syncNow();
    await new Promise((r) => setTimeout(r, 200));
    await s.stop();
    expect(wfm.requests.filter((r) => r.startsWith("manifest"))).toHaveLength(2);
  });

  it("item 3 / review: an unchanged refused manifest costs a 304 and records nothing new; a new ETag is judged afresh", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A, "1.0.0", ID_B)]], { bundleSize: null });
    const bad = wfm.etag;
    const s = sync();
    const outs = [await s.syncOnce(), await s.syncOnce(), await s.syncOnce()];
    expect(outs[0]).toMatchObject({ result: "rejected", kind: "manifest-invalid" });
    expect(outs[0]).not.toHaveProperty("repeated");
    expect(outs.slice(1)).toEqual(
      Array(2).fill(
        expect.objectContaining({ result: "rejected", kind: "manifest-invalid", repeated: true }),
      ),
    );
    expect(store.recentErrors(10).filter((e) => e.kind === "manifest-invalid")).toHaveLength(1);
    // The first poll had no ETag to send; the later ones sent the refused one and got 304.
    const polls = wfm.requests.filter((r) => r.startsWith("manifest"));
    expect(polls).toEqual(["manifest -", `manifest ${bad}`, `manifest ${bad}`]);
    // Only the refused YAML was fetched, once.
    expect(wfm.requests.filter((r) => !r.startsWith("manifest"))).toHaveLength(1);
    // A fixed manifest under a new ETag is accepted.
    await wfm.publish(2, [[ID_A, yaml(ID_A)]], { bundleSize: null });
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", manifestVersion: 2n });
    expect(wfm.requests.filter((r) => r.startsWith("manifest")).at(-1)).toBe(`manifest ${bad}`);
    expect(await s.syncOnce()).toEqual({ result: "unchanged" });
    expect(wfm.requests.at(-1)).toBe(`manifest ${wfm.etag}`);
  });

  it("a missing artifact is not remembered: the same manifest is fetched and judged again", async () => {
    await wfm.publish(1, [[ID_A, yaml(ID_A)]], { bundleSize: null });
    const url = [...wfm.artifacts.keys()].find((u) => u.includes(ID_A)) as string;
    const bytes = wfm.artifacts.get(url) as Uint8Array;
    wfm.artifacts.delete(url);
    const s = sync();
    expect(await s.syncOnce()).toMatchObject({ result: "rejected", kind: "artifact-not-found" });
    wfm.artifacts.set(url, bytes);
    expect(await s.syncOnce()).toMatchObject({ result: "accepted", manifestVersion: 1n });
  });

  it("item 86: a non-retryable answer gets no error backoff (next regular poll) and is logged once", async () => {
    const events: LogEvent[] = [];
    const s = new ManifestSync({
      config,
      api: wfm,
      store,
      log: (e) => events.push(e),
      onAccepted: () => accepted++,
    });
    wfm.manifestError = problemError(403, { type: `${NS}not-authorized`, retryable: false });
    const outs = [await s.syncOnce(), await s.syncOnce(), await s.syncOnce()];
    for (const o of outs) {
      expect(o).toMatchObject({ result: "error" });
      expect(o).not.toHaveProperty("retryInMs");
    }
    const failed = events.filter((e) => e.kind === "sync-failed");
    expect(failed.map((e) => e.level)).toEqual(["warn", "debug", "debug"]);
    // Another error is a new line.
    wfm.manifestError = problemError(409, { type: "about:blank", retryable: false });
    await s.syncOnce();
    expect(events.filter((e) => e.kind === "sync-failed").at(-1)?.level).toBe("warn");
  });

  it("item 86: retryable answers follow backoffStrategy: fixed is constant, exponential grows, Retry-After is a floor", async () => {
    const s = new ManifestSync({
      config,
      api: wfm,
      store,
      log: silentLog,
      onAccepted: () => accepted++,
      random: () => 0.5,
      backoff: { baseMs: 1_000, capMs: 60_000 },
    });
    wfm.manifestError = problemError(503, { retryable: true, strategy: 2, after: 9 });
    const fixed = [await s.syncOnce(), await s.syncOnce(), await s.syncOnce()];
    expect(fixed.map((o) => o.result === "error" && o.retryInMs)).toEqual([9_000, 9_000, 9_000]);
    wfm.manifestError = new WfmRequestError("network", "ECONNREFUSED", {
      retryable: true,
      backoff: "exponential",
    });
    const grow = [await s.syncOnce(), await s.syncOnce()];
    expect(grow.map((o) => o.result === "error" && o.retryInMs)).toEqual([4_000, 8_000]);
    const retryAt = Date.now() + 45_000;
    wfm.manifestError = problemError(429, { retryable: true, strategy: 3, after: 1 }, retryAt);
    const out = await s.syncOnce();
    expect(out.result === "error" && out.retryInMs).toBeGreaterThanOrEqual(44_000);
    // An answer starts the spacing over.
    wfm.manifestError = undefined;
    await wfm.publish(1, [[ID_A, yaml(ID_A)]]);
    expect(await s.syncOnce()).toMatchObject({ result: "accepted" });
    wfm.manifestError = new WfmRequestError("network", "ECONNREFUSED", {
      retryable: true,
      backoff: "exponential",
    });
    expect(await s.syncOnce()).toMatchObject({ result: "error", retryInMs: 500 });
  });
});

const NS = "https://docs.margo.org/specification/problem-types#";

/** An error answer as the transport builds it (strategy numbers as the generated enum). */
function problemError(
  status: number,
  p: { type?: string; retryable: boolean; strategy?: 1 | 2 | 3; after?: number },
  retryAt?: number,
): WfmRequestError {
  const problem = {
    type: p.type ?? "about:blank",
    title: "x",
    status,
    retryable: p.retryable,
    ...(p.after !== undefined ? { retryAfterSeconds: BigInt(p.after) } : {}),
    backoffStrategy: p.strategy ?? 0,
    errors: [],
  } as unknown as ProblemDetail;
  return new WfmRequestError("http", `${status} ${problem.type}`, {
    status,
    problem,
    retryable: p.retryable,
    backoff: p.strategy === 2 ? "fixed" : p.strategy === 3 ? "exponential" : "none",
    ...(retryAt !== undefined ? { retryAt } : {}),
  });
}
