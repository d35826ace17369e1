import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeU64, U64_MAX } from "@margo/proto/wire";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isWfmError, WfmError } from "../core/errors.js";
import { MIGRATIONS } from "./migrations.js";
import { openSqliteStore, type SqliteStore } from "./sqlite-store.js";
import type { DeploymentRecord, DesiredStateChange, ManifestRecord } from "./store.js";

let dir: string;
let dbPath: string;
let store: SqliteStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "wfm-store-"));
  dbPath = join(dir, "data", "wfm.sqlite");
  store = await openSqliteStore(dbPath);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function manifestFor(
  clientId: string,
  version: bigint,
  body: Buffer,
  bundle?: Buffer,
): ManifestRecord {
  const m: ManifestRecord = {
    clientId,
    manifestVersion: version,
    body,
    etag: `"sha256:${sha256(body)}"`,
  };
  if (bundle) m.bundle = { digest: `sha256:${sha256(bundle)}`, bytes: bundle };
  return m;
}

let clock = 1_700_000_000_000;
function deployment(clientId: string, over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  const yaml = Buffer.from(`apiVersion: application.margo.org/v1alpha1\n# ${randomUUID()}\n`);
  clock += 1000;
  return {
    deploymentId: randomUUID(),
    clientId,
    deviceId: "device-1",
    applicationId: "com.example.app",
    version: "1.0.0",
    profileId: "default",
    parametersJson: "{}",
    yaml,
    digest: `sha256:${sha256(yaml)}`,
    manifestVersion: 1n,
    createdAt: new Date(clock),
    updatedAt: new Date(clock),
    ...over,
  };
}

/** A change that adds the given deployments, removes the given ids and records a manifest. */
function adding(
  clientId: string,
  add: DeploymentRecord[],
  remove: string[] = [],
): DesiredStateChange {
  return ({ deployments, nextVersion }) => {
    const liveAfter = deployments.length + add.length - remove.length;
    const body = Buffer.from(`{"manifestVersion":${nextVersion},"n":${liveAfter}}`);
    return {
      upserts: add.map((d) => ({ ...d, manifestVersion: nextVersion })),
      deletes: remove,
      manifest: manifestFor(clientId, nextVersion, body, liveAfter > 0 ? body : undefined),
    };
  };
}

describe("SqliteStore: clients", () => {
  it("puts, gets, lists, retires and re-admits a client", async () => {
    await store.putClient({ clientId: "b", addedAt: new Date(2000), displayName: "Bee" });
    await store.putClient({ clientId: "a", addedAt: new Date(1000) });
    expect(await store.getClient("b")).toEqual({
      clientId: "b",
      addedAt: new Date(2000),
      displayName: "Bee",
    });
    expect((await store.listClients()).map((c) => c.clientId)).toEqual(["a", "b"]);
    await store.putClient({ clientId: "a", addedAt: new Date(1000), retiredAt: new Date(3000) });
    expect((await store.getClient("a"))?.retiredAt).toEqual(new Date(3000));
    await store.putClient({ clientId: "a", addedAt: new Date(1000) });
    const readmitted = await store.getClient("a");
    expect(readmitted?.retiredAt).toBeUndefined();
    expect(readmitted && "retiredAt" in readmitted).toBe(false);
    expect(await store.getClient("nobody")).toBeUndefined();
  });
});

describe("SqliteStore: devices", () => {
  it("putDevice reports created then replaced, and keeps the exact bytes", async () => {
    const first = Buffer.from('{"a": 1,  "x":"é"}\n');
    const second = randomBytes(300);
    expect(
      await store.putDevice({
        clientId: "c1",
        deviceId: "d1",
        capabilities: first,
        receivedAt: new Date(5),
      }),
    ).toEqual({ created: true });
    expect((await store.getDevice("c1", "d1"))?.capabilities.equals(first)).toBe(true);
    expect(
      await store.putDevice({
        clientId: "c1",
        deviceId: "d1",
        capabilities: second,
        receivedAt: new Date(6),
      }),
    ).toEqual({ created: false });
    const got = await store.getDevice("c1", "d1");
    expect(Buffer.isBuffer(got?.capabilities)).toBe(true);
    expect(got?.capabilities.equals(second)).toBe(true);
    expect(got?.receivedAt).toEqual(new Date(6));
  });

  it("lists per client, deletes, and reports a delete of nothing as false", async () => {
    const caps = Buffer.from("{}");
    await store.putDevice({
      clientId: "c1",
      deviceId: "d2",
      capabilities: caps,
      receivedAt: new Date(1),
    });
    await store.putDevice({
      clientId: "c1",
      deviceId: "d1",
      capabilities: caps,
      receivedAt: new Date(1),
    });
    await store.putDevice({
      clientId: "c2",
      deviceId: "d1",
      capabilities: caps,
      receivedAt: new Date(1),
    });
    expect((await store.listDevices("c1")).map((d) => d.deviceId)).toEqual(["d1", "d2"]);
    expect((await store.listDevices()).map((d) => `${d.clientId}/${d.deviceId}`)).toEqual([
      "c1/d1",
      "c1/d2",
      "c2/d1",
    ]);
    // Same device id under another client is another device: isolation at the key level.
    expect(await store.getDevice("c2", "d2")).toBeUndefined();
    expect(await store.deleteDevice("c1", "d1")).toBe(true);
    expect(await store.deleteDevice("c1", "d1")).toBe(false);
    expect(await store.getDevice("c1", "d1")).toBeUndefined();
    expect(await store.getDevice("c2", "d1")).toBeDefined();
    // After a delete, the next put is a creation again.
    expect(
      await store.putDevice({
        clientId: "c1",
        deviceId: "d1",
        capabilities: caps,
        receivedAt: new Date(2),
      }),
    ).toEqual({ created: true });
  });
});

describe("SqliteStore: applications", () => {
  const app = (version: string, at: number) => ({
    applicationId: "com.example.app",
    version,
    ociReference: `127.0.0.1:5000/app:${version}`,
    manifestDigest: `sha256:${"a".repeat(64)}`,
    descriptionYaml: Buffer.from(`id: com.example.app\nversion: ${version}\n`),
    registeredAt: new Date(at),
  });

  it("keeps the first registration of a version and returns it", async () => {
    const first = app("1.0.0", 1000);
    expect(await store.putApplication(first)).toEqual(first);
    const again = { ...app("1.0.0", 9000), ociReference: "elsewhere/app:1.0.0" };
    expect(await store.putApplication(again)).toEqual(first);
    expect(await store.getApplication("com.example.app", "1.0.0")).toEqual(first);
  });

  it("getApplication without a version gives the newest registered", async () => {
    await store.putApplication(app("2.0.0", 1000));
    await store.putApplication(app("1.5.0", 2000));
    expect((await store.getApplication("com.example.app"))?.version).toBe("1.5.0");
    expect(await store.getApplication("com.example.app", "9.9.9")).toBeUndefined();
    expect(await store.getApplication("org.other")).toBeUndefined();
    expect((await store.listApplications()).map((a) => a.version)).toEqual(["2.0.0", "1.5.0"]);
  });
});

describe("SqliteStore: desired state", () => {
  it("item 42: versions start at 1 and strictly increase, per client", async () => {
    const seen: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await store.commitDesiredState("c1", adding("c1", i % 2 ? [] : [deployment("c1")]));
      seen.push(m.manifestVersion);
    }
    expect(seen).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect((await store.commitDesiredState("c2", adding("c2", []))).manifestVersion).toBe(1n);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(5n);
  });

  it("hands change the live deployments oldest first and the next version", async () => {
    const older = deployment("c1", { createdAt: new Date(1000), deploymentId: "z-id" });
    const newer = deployment("c1", { createdAt: new Date(2000), deploymentId: "a-id" });
    const tie = deployment("c1", { createdAt: new Date(1000), deploymentId: "b-id" });
    await store.commitDesiredState("c1", adding("c1", [newer, older, tie]));
    await store.commitDesiredState("c2", adding("c2", [deployment("c2")]));
    let seen: { ids: string[]; next: bigint } | undefined;
    await store.commitDesiredState("c1", (cur) => {
      seen = { ids: cur.deployments.map((d) => d.deploymentId), next: cur.nextVersion };
      return adding("c1", [])(cur);
    });
    expect(seen).toEqual({ ids: ["b-id", "z-id", "a-id"], next: 2n });
  });

  it("a throwing change writes nothing and its error propagates unchanged", async () => {
    const d = deployment("c1");
    const before = await store.commitDesiredState("c1", adding("c1", [d]));
    const boom = new WfmError("semantic-error", "bad parameters", [{ field: "/x", message: "no" }]);
    await expect(
      store.commitDesiredState("c1", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    // A change that fails only at write time (unknown delete) must also leave nothing behind.
    const extra = deployment("c1");
    await expect(
      store.commitDesiredState("c1", adding("c1", [extra], ["not-a-live-id"])),
    ).rejects.toSatisfy((e: unknown) => isWfmError(e, "not-found"));
    expect(await store.getManifest("c1")).toEqual(before);
    expect(await store.getDeployment(extra.deploymentId)).toBeUndefined();
    expect((await store.listDeployments({ clientId: "c1" })).map((x) => x.deploymentId)).toEqual([
      d.deploymentId,
    ]);
    // The version did not move: the next commit is 2, not 3.
    expect((await store.commitDesiredState("c1", adding("c1", []))).manifestVersion).toBe(2n);
  });

  it("refuses a manifest for another client or version", async () => {
    await expect(
      store.commitDesiredState("c1", ({ nextVersion }) => ({
        upserts: [],
        deletes: [],
        manifest: manifestFor("c2", nextVersion, Buffer.from("{}")),
      })),
    ).rejects.toSatisfy((e: unknown) => isWfmError(e, "internal"));
    await expect(
      store.commitDesiredState("c1", ({ nextVersion }) => ({
        upserts: [],
        deletes: [],
        manifest: manifestFor("c1", nextVersion + 1n, Buffer.from("{}")),
      })),
    ).rejects.toSatisfy((e: unknown) => isWfmError(e, "internal"));
    expect(await store.getManifest("c1")).toBeUndefined();
  });

  it("refuses a deployment id another client owns", async () => {
    const d = deployment("c1");
    await store.commitDesiredState("c1", adding("c1", [d]));
    await expect(
      store.commitDesiredState("c2", adding("c2", [{ ...d, clientId: "c2" }])),
    ).rejects.toSatisfy((e: unknown) => isWfmError(e, "conflict"));
    expect((await store.getDeployment(d.deploymentId))?.clientId).toBe("c1");
  });

  it("round-trips manifest body, etag and bundle bytes exactly; keeps only the current bundle", async () => {
    const body = Buffer.concat([Buffer.from('{"k":"\u00e9"}'), Buffer.from([0, 255, 10, 13])]);
    const bundle = randomBytes(64 * 1024);
    const returned = await store.commitDesiredState("c1", ({ nextVersion }) => ({
      upserts: [],
      deletes: [],
      manifest: manifestFor("c1", nextVersion, body, bundle),
    }));
    const got = await store.getManifest("c1");
    expect(got?.body.equals(body)).toBe(true);
    expect(got?.bundle?.bytes.equals(bundle)).toBe(true);
    expect(got?.etag).toBe(`"sha256:${sha256(body)}"`);
    expect(got).toEqual(returned);
    // Next manifest without deployments: bundle gone (bundle: null on the wire).
    await store.commitDesiredState("c1", ({ nextVersion }) => ({
      upserts: [],
      deletes: [],
      manifest: manifestFor("c1", nextVersion, Buffer.from("{}")),
    }));
    const after = await store.getManifest("c1");
    expect(after?.bundle).toBeUndefined();
    expect(after && "bundle" in after).toBe(false);
    expect(after?.body.toString()).toBe("{}");
    expect(await store.getManifest("nobody")).toBeUndefined();
  });

  it("round-trips every deployment field exactly, including an empty YAML", async () => {
    const d = deployment("c1", {
      yaml: Buffer.alloc(0),
      parametersJson: '{"a":[1,2],"b":"ü"}',
      deviceId: "dev/x",
    });
    await store.commitDesiredState("c1", ({ nextVersion }) => ({
      upserts: [{ ...d, manifestVersion: nextVersion }],
      deletes: [],
      manifest: manifestFor("c1", nextVersion, Buffer.from("{}")),
    }));
    const got = await store.getDeployment(d.deploymentId);
    expect(got).toEqual({ ...d, manifestVersion: 1n });
    expect(Buffer.isBuffer(got?.yaml)).toBe(true);
    expect(got?.yaml.length).toBe(0);
  });

  it("an upsert replaces a live deployment by id", async () => {
    const d = deployment("c1");
    await store.commitDesiredState("c1", adding("c1", [d]));
    const yaml = Buffer.from("changed: true\n");
    await store.commitDesiredState("c1", ({ nextVersion }) => ({
      upserts: [
        {
          ...d,
          yaml,
          digest: `sha256:${sha256(yaml)}`,
          manifestVersion: nextVersion,
          updatedAt: new Date(clock + 5),
        },
      ],
      deletes: [],
      manifest: manifestFor("c1", nextVersion, Buffer.from("{}")),
    }));
    const live = await store.listDeployments({ clientId: "c1" });
    expect(live).toHaveLength(1);
    expect(live[0]?.yaml.equals(yaml)).toBe(true);
    expect(live[0]?.manifestVersion).toBe(2n);
    expect(live[0]?.createdAt).toEqual(d.createdAt);
  });

  it("deletes leave tombstones that listing hides unless asked", async () => {
    const keep = deployment("c1", { deviceId: "d1" });
    const drop = deployment("c1", { deviceId: "d2" });
    const other = deployment("c2", { deviceId: "d1" });
    await store.commitDesiredState("c1", adding("c1", [keep, drop]));
    await store.commitDesiredState("c2", adding("c2", [other]));
    const before = Date.now();
    await store.commitDesiredState("c1", adding("c1", [], [drop.deploymentId]));

    const tomb = await store.getDeployment(drop.deploymentId);
    expect(tomb?.deletedAt).toBeInstanceOf(Date);
    expect(tomb?.deletedAt?.getTime()).toBeGreaterThanOrEqual(before);
    expect(tomb?.yaml.equals(drop.yaml)).toBe(true);

    const ids = (rs: DeploymentRecord[]) => rs.map((r) => r.deploymentId).sort();
    expect(ids(await store.listDeployments({ clientId: "c1" }))).toEqual([keep.deploymentId]);
    expect(ids(await store.listDeployments({ clientId: "c1", includeDeleted: true }))).toEqual(
      [keep.deploymentId, drop.deploymentId].sort(),
    );
    expect(ids(await store.listDeployments({ deviceId: "d1" }))).toEqual(
      [keep.deploymentId, other.deploymentId].sort(),
    );
    expect(ids(await store.listDeployments({ clientId: "c2", deviceId: "d1" }))).toEqual([
      other.deploymentId,
    ]);
    expect(ids(await store.listDeployments())).toEqual(
      [keep.deploymentId, other.deploymentId].sort(),
    );
    // A tombstone is not live: the next change does not see it, and deleting it again is refused.
    await store.commitDesiredState("c1", (cur) => {
      expect(cur.deployments.map((x) => x.deploymentId)).toEqual([keep.deploymentId]);
      return adding("c1", [])(cur);
    });
    await expect(
      store.commitDesiredState("c1", adding("c1", [], [drop.deploymentId])),
    ).rejects.toSatisfy((e: unknown) => isWfmError(e, "not-found"));
  });

  it("listManifests gives every client's current manifest", async () => {
    await store.commitDesiredState("c2", adding("c2", []));
    await store.commitDesiredState("c1", adding("c1", []));
    await store.commitDesiredState("c1", adding("c1", []));
    const all = await store.listManifests();
    expect(all.map((m) => [m.clientId, m.manifestVersion])).toEqual([
      ["c1", 2n],
      ["c2", 1n],
    ]);
  });

  it("concurrent commits for one client serialize into distinct consecutive versions", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        store.commitDesiredState("c1", adding("c1", [deployment("c1")])),
      ),
    );
    expect(results.map((m) => m.manifestVersion).sort((a, b) => (a < b ? -1 : 1))).toEqual(
      Array.from({ length: 20 }, (_, i) => BigInt(i + 1)),
    );
    expect(await store.listDeployments({ clientId: "c1" })).toHaveLength(20);
  });

  it("item 42: two stores on one file (CLI beside serve) continue one sequence", async () => {
    const other = await openSqliteStore(dbPath);
    try {
      const seen: bigint[] = [];
      for (let i = 0; i < 6; i++) {
        const s = i % 2 ? other : store;
        seen.push(
          (await s.commitDesiredState("c1", adding("c1", [deployment("c1")]))).manifestVersion,
        );
      }
      expect(seen).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
      expect(await other.listDeployments({ clientId: "c1" })).toHaveLength(6);
    } finally {
      await other.close();
    }
  });

  it("item 42: the version survives close and reopen", async () => {
    await store.commitDesiredState("c1", adding("c1", [deployment("c1")]));
    await store.commitDesiredState("c1", adding("c1", []));
    await store.close();
    store = await openSqliteStore(dbPath);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(2n);
    expect((await store.commitDesiredState("c1", adding("c1", []))).manifestVersion).toBe(3n);
  });
});

describe("SqliteStore: u64 manifestVersion", () => {
  it("item 42: stores 2^64-1 exactly and refuses to advance past it", async () => {
    await store.commitDesiredState("c1", adding("c1", []));
    await store.close();
    // Jump the stored sequence to just below the top, as a long-lived client would reach it.
    const raw = new Database(dbPath);
    raw
      .prepare("UPDATE client_versions SET manifest_version = ? WHERE client_id = ?")
      .run(encodeU64(U64_MAX - 1n), "c1");
    raw.close();
    store = await openSqliteStore(dbPath);

    const d = deployment("c1");
    const top = await store.commitDesiredState("c1", adding("c1", [d]));
    expect(top.manifestVersion).toBe(18446744073709551615n);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(U64_MAX);
    expect((await store.getDeployment(d.deploymentId))?.manifestVersion).toBe(U64_MAX);
    expect((await store.listManifests())[0]?.manifestVersion).toBe(U64_MAX);

    await expect(store.commitDesiredState("c1", adding("c1", []))).rejects.toSatisfy((e: unknown) =>
      isWfmError(e, "internal"),
    );
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(U64_MAX);
  });
});

describe("SqliteStore: statuses", () => {
  it("item 71: putStatus reports created then updated, keeps the latest exact body, filters", async () => {
    const s1 = Buffer.from('{"state":"installing"}');
    const s2 = Buffer.from('{"state":"installed"} ');
    expect(
      await store.putStatus({
        clientId: "c1",
        deploymentId: "x",
        body: s1,
        receivedAt: new Date(1),
      }),
    ).toEqual({ created: true });
    expect(
      await store.putStatus({
        clientId: "c1",
        deploymentId: "x",
        body: s2,
        receivedAt: new Date(2),
      }),
    ).toEqual({ created: false });
    await store.putStatus({ clientId: "c1", deploymentId: "y", body: s1, receivedAt: new Date(3) });
    await store.putStatus({ clientId: "c2", deploymentId: "x", body: s1, receivedAt: new Date(4) });

    const c1x = await store.listStatuses({ clientId: "c1", deploymentId: "x" });
    expect(c1x).toHaveLength(1);
    expect(c1x[0]?.body.equals(s2)).toBe(true);
    expect(c1x[0]?.receivedAt).toEqual(new Date(2));
    expect((await store.listStatuses({ clientId: "c1" })).map((s) => s.deploymentId)).toEqual([
      "x",
      "y",
    ]);
    expect((await store.listStatuses({ deploymentId: "x" })).map((s) => s.clientId)).toEqual([
      "c1",
      "c2",
    ]);
    expect(await store.listStatuses()).toHaveLength(3);
  });
});

describe("SqliteStore: resetData", () => {
  it("forgets applications, devices, statuses and tombstones; keeps clients, versions, live deployments, manifests", async () => {
    await store.putClient({ clientId: "c1", addedAt: new Date(1) });
    await store.putDevice({
      clientId: "c1",
      deviceId: "d1",
      capabilities: Buffer.from("{}"),
      receivedAt: new Date(1),
    });
    await store.putApplication({
      applicationId: "a",
      version: "1",
      ociReference: "r/a:1",
      manifestDigest: "sha256:00",
      descriptionYaml: Buffer.from("id: a"),
      registeredAt: new Date(1),
    });
    const live = deployment("c1");
    const gone = deployment("c1");
    await store.commitDesiredState("c1", adding("c1", [live, gone]));
    await store.commitDesiredState("c1", adding("c1", [], [gone.deploymentId]));
    await store.putStatus({
      clientId: "c1",
      deploymentId: live.deploymentId,
      body: Buffer.from("{}"),
      receivedAt: new Date(1),
    });

    await store.resetData();

    expect(await store.listApplications()).toEqual([]);
    expect(await store.listDevices()).toEqual([]);
    expect(await store.listStatuses()).toEqual([]);
    expect(await store.getDeployment(gone.deploymentId)).toBeUndefined();
    expect((await store.getDeployment(live.deploymentId))?.deploymentId).toBe(live.deploymentId);
    expect((await store.listClients()).map((c) => c.clientId)).toEqual(["c1"]);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(2n);
    // The version sequence continues; it never restarts at 1 after a reset.
    expect(
      (await store.commitDesiredState("c1", adding("c1", [], [live.deploymentId]))).manifestVersion,
    ).toBe(3n);
  });
});

describe("SqliteStore: file and schema", () => {
  it("uses WAL, synchronous=FULL and foreign keys, and records its migrations", async () => {
    // synchronous 2 = FULL: the WAL is fsynced at every commit.
    expect(store.settings()).toEqual({
      journalMode: "wal",
      synchronous: 2,
      foreignKeys: true,
      busyTimeoutMs: 5000,
    });
    await store.close();
    const raw = new Database(dbPath);
    expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
    const rows = raw.prepare("SELECT version FROM schema_migrations ORDER BY version").all();
    expect(rows).toEqual(MIGRATIONS.map((_, i) => ({ version: i + 1 })));
    raw.close();
    store = await openSqliteStore(dbPath);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
  });

  it("a data directory from schema 1 upgrades in place and keeps its manifests and versions", async () => {
    await store.close();
    const oldPath = join(dir, "v1.sqlite");
    const raw = new Database(oldPath);
    raw.exec(
      "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
    );
    raw.exec(MIGRATIONS[0] as string);
    raw.prepare("INSERT INTO schema_migrations VALUES (1, 0)").run();
    raw.prepare("INSERT INTO client_versions VALUES ('c1', ?)").run(encodeU64(7n));
    raw
      .prepare("INSERT INTO manifests VALUES ('c1', ?, ?, 'etag', 'sha256:b', ?)")
      .run(encodeU64(7n), Buffer.from("{}"), Buffer.from("bundle"));
    raw.close();
    store = await openSqliteStore(oldPath);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(7n);
    expect((await store.getBundle("c1", "sha256:b"))?.toString()).toBe("bundle");
    const next = await store.commitDesiredState("c1", adding("c1", []));
    expect(next.manifestVersion).toBe(8n);
    // The bundle of manifest 7 is now the previous one and still served.
    expect((await store.getBundle("c1", "sha256:b"))?.toString()).toBe("bundle");
  });

  it("refuses a database from a newer schema", async () => {
    await store.close();
    const raw = new Database(dbPath);
    raw
      .prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
      .run(MIGRATIONS.length + 1);
    raw.close();
    await expect(openSqliteStore(dbPath)).rejects.toThrow(/newer/);
    store = await openSqliteStore(":memory:");
  });

  it("a closed store fails with a WfmError, not a crash", async () => {
    await store.close();
    await store.close();
    await expect(store.getManifest("c1")).rejects.toSatisfy((e: unknown) =>
      isWfmError(e, "internal"),
    );
    store = await openSqliteStore(":memory:");
  });
});

function device(clientId: string, deviceId: string, at = 1) {
  return {
    clientId,
    deviceId,
    capabilities: Buffer.from(`{"id":"${deviceId}"}`),
    receivedAt: new Date(at),
  };
}

async function caughtWfm(p: Promise<unknown>): Promise<WfmError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WfmError) return err;
    throw err;
  }
  throw new Error("expected a WfmError, the call succeeded");
}

describe("SqliteStore: device trees", () => {
  it("item 27: putDevice with requireParent checks the gateway in the same write and stores nothing without it", async () => {
    const err = await caughtWfm(store.putDevice(device("c1", "gw/cam"), { requireParent: "gw" }));
    expect(err.kind).toBe("gateway-not-found");
    expect(await store.listDevices("c1")).toEqual([]);
    // Another client's gateway does not count (item 5).
    await store.putDevice(device("c2", "gw"));
    expect(
      (await caughtWfm(store.putDevice(device("c1", "gw/cam"), { requireParent: "gw" }))).kind,
    ).toBe("gateway-not-found");
    await store.putDevice(device("c1", "gw"));
    expect(await store.putDevice(device("c1", "gw/cam"), { requireParent: "gw" })).toEqual({
      created: true,
    });
    expect(await store.putDevice(device("c1", "gw/cam", 2), { requireParent: "gw" })).toEqual({
      created: false,
    });
  });

  it("deleteDeviceTree removes a gateway and everything under it in one call, and nothing else", async () => {
    for (const id of ["g_", "g_/a", "g_/p/b", "gx", "gx/a", "g_x", "g"])
      await store.putDevice(device("c1", id));
    await store.putDevice(device("c2", "g_/a"));
    await store.putDevice(device("c2", "g_"));
    // "_" is a LIKE wildcard: gx/a must survive the delete of g_.
    expect(await store.deleteDeviceTree("c1", "g_")).toBe(3);
    expect((await store.listDevices("c1")).map((d) => d.deviceId)).toEqual([
      "g",
      "g_x",
      "gx",
      "gx/a",
    ]);
    expect((await store.listDevices("c2")).map((d) => d.deviceId)).toEqual(["g_", "g_/a"]);
    expect(await store.deleteDeviceTree("c1", "g_")).toBe(0);
    // A child whose own record is gone is not deleted through a missing parent id.
    expect(await store.deleteDeviceTree("c1", "nothing")).toBe(0);
    expect(await store.deleteDeviceTree("c1", "gx/a")).toBe(1);
    expect((await store.listDevices("c1")).map((d) => d.deviceId)).toEqual(["g", "g_x", "gx"]);
  });
});

describe("SqliteStore: previous manifest's artifacts", () => {
  it("serves the YAML and bundle of manifest N-1 while N is current, and prunes older ones", async () => {
    const d1 = deployment("c1");
    const m2 = await store.commitDesiredState("c1", adding("c1", [d1]));
    const b2 = m2.bundle?.digest ?? "";
    const d1b = { ...deployment("c1"), deploymentId: d1.deploymentId, createdAt: d1.createdAt };
    const m3 = await store.commitDesiredState("c1", adding("c1", [d1b]));
    const b3 = m3.bundle?.digest ?? "";
    expect(b3).not.toBe(b2);
    // N = 3: revision 1 and bundle of 2 still there; the current ones too.
    expect((await store.getDeploymentYaml("c1", d1.deploymentId, d1.digest))?.equals(d1.yaml)).toBe(
      true,
    );
    expect(
      (await store.getDeploymentYaml("c1", d1.deploymentId, d1b.digest))?.equals(d1b.yaml),
    ).toBe(true);
    expect((await store.getBundle("c1", b2))?.equals(m2.bundle?.bytes ?? Buffer.alloc(0))).toBe(
      true,
    );
    expect((await store.getBundle("c1", b3))?.equals(m3.bundle?.bytes ?? Buffer.alloc(0))).toBe(
      true,
    );
    // Scoped to the client (item 5).
    expect(await store.getDeploymentYaml("c2", d1.deploymentId, d1.digest)).toBeUndefined();
    expect(await store.getBundle("c2", b2)).toBeUndefined();

    // N = 4 deletes the deployment: its last revision (referenced by 3) stays, revision 1 goes.
    const m4 = await store.commitDesiredState("c1", adding("c1", [], [d1.deploymentId]));
    expect(m4.bundle).toBeUndefined();
    expect(await store.getDeploymentYaml("c1", d1.deploymentId, d1.digest)).toBeUndefined();
    expect(await store.getBundle("c1", b2)).toBeUndefined();
    expect(
      (await store.getDeploymentYaml("c1", d1.deploymentId, d1b.digest))?.equals(d1b.yaml),
    ).toBe(true);
    expect((await store.getBundle("c1", b3))?.equals(m3.bundle?.bytes ?? Buffer.alloc(0))).toBe(
      true,
    );

    // Survives a restart (the retired artifacts are stored, not cached).
    await store.close();
    store = await openSqliteStore(dbPath);
    expect((await store.getBundle("c1", b3))?.length).toBe(m3.bundle?.bytes.length);

    // N = 5: manifest 3 is now N-2, so its artifacts are gone too.
    await store.commitDesiredState("c1", adding("c1", []));
    expect(await store.getDeploymentYaml("c1", d1.deploymentId, d1b.digest)).toBeUndefined();
    expect(await store.getBundle("c1", b3)).toBeUndefined();
  });
});

describe("SqliteStore: resetAll", () => {
  function emptying(clientId: string): DesiredStateChange {
    return ({ deployments, nextVersion }) => ({
      upserts: [],
      deletes: deployments.map((d) => d.deploymentId),
      manifest: manifestFor(clientId, nextVersion, Buffer.from(`{"v":${nextVersion}}`)),
    });
  }

  it("empties every client with live deployments under a new version and forgets data, in one transaction", async () => {
    const a = deployment("c1");
    await store.commitDesiredState("c1", adding("c1", [a]));
    await store.commitDesiredState("c2", adding("c2", [deployment("c2")]));
    await store.commitDesiredState("c3", adding("c3", []));
    await store.putDevice(device("c1", "d1"));
    const committed = await store.resetAll(emptying);
    expect(committed.map((m) => [m.clientId, m.manifestVersion])).toEqual([
      ["c1", 2n],
      ["c2", 2n],
    ]);
    expect(await store.listDeployments({ includeDeleted: true })).toEqual([]);
    expect(await store.listDevices()).toEqual([]);
    expect((await store.getManifest("c3"))?.manifestVersion).toBe(1n);
    expect((await store.getManifest("c1"))?.body.toString()).toBe('{"v":2}');
    // Reset forgets the previous manifests' artifacts too.
    expect(await store.getDeploymentYaml("c1", a.deploymentId, a.digest)).toBeUndefined();
  });

  it("a failure for one client rolls back every client's commit and keeps the data", async () => {
    await store.commitDesiredState("c1", adding("c1", [deployment("c1")]));
    await store.commitDesiredState("c2", adding("c2", [deployment("c2")]));
    await store.putDevice(device("c1", "d1"));
    const boom = new Error("builder failed for c2");
    await expect(
      store.resetAll((clientId) => {
        if (clientId === "c2") throw boom;
        return emptying(clientId);
      }),
    ).rejects.toBe(boom);
    expect((await store.getManifest("c1"))?.manifestVersion).toBe(1n);
    expect(await store.listDeployments()).toHaveLength(2);
    expect((await store.listDevices()).map((d) => d.deviceId)).toEqual(["d1"]);
  });
});

describe("SqliteStore: errors that reach clients", () => {
  it("a busy store is unavailable with a generic detail; SQLite's error stays on cause", async () => {
    await store.close();
    store = await openSqliteStore(dbPath, { busyTimeoutMs: 20 });
    const holder = new Database(dbPath);
    holder.exec("BEGIN IMMEDIATE");
    try {
      const err = await caughtWfm(store.putDevice(device("c1", "d1")));
      expect(err.kind).toBe("unavailable");
      expect(err.retryAfterSeconds).toBe(1);
      expect(err.message).not.toMatch(/sqlite|database|locked/i);
      expect(err.cause).toBeInstanceOf(Database.SqliteError);
      expect((err.cause as { code: string }).code).toMatch(/^SQLITE_BUSY/);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
  });

  it("a broken file is internal with a generic detail that names no path or SQL", async () => {
    await store.close();
    const bad = join(dir, "not-a-db.sqlite");
    writeFileSync(bad, randomBytes(8192));
    const err = await caughtWfm(openSqliteStore(bad));
    expect(err.kind).toBe("internal");
    expect(err.message).toBe("the store failed");
    expect(err.cause).toBeInstanceOf(Database.SqliteError);
    store = await openSqliteStore(":memory:");
  });
});
