import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { U64_MAX } from "@margo/proto/wire";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { deploymentYaml, record } from "../../test/support/deployments.js";
import { SchemaTooNewError } from "./migrations.js";
import {
  DELIVERED_KEEP,
  ERRORS_KEEP,
  openReadOnly,
  SqliteAgentStore,
  STORE_FILE,
  StoreUnavailableError,
} from "./sqlite-store.js";
import { type AcceptedManifest, StoreConflictError } from "./store.js";

const dirs: string[] = [];
const open: Array<{ close(): void }> = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "agent-store-"));
  dirs.push(d);
  return d;
}
function openStore(dir = freshDir()) {
  const s = SqliteAgentStore.open(dir);
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dgst = (c: string) => `sha256:${c.repeat(64)}`;

function manifest(version: bigint, deployments: Array<[string, string]>): AcceptedManifest {
  return {
    manifestVersion: version,
    etag: `"v${version}"`,
    body: enc(`{"manifestVersion":${version}}`),
    deployments: deployments.map(([id, c]) => ({
      deploymentId: id,
      digest: dgst(c),
      yaml: deploymentYaml(id, { revision: c }),
    })),
  };
}

describe("SqliteAgentStore manifest floor (item 51, item 54)", () => {
  it("accepts rising versions up to 2^64-1 and refuses equal and lower ones inside the write", () => {
    const s = openStore();
    expect(s.readSync()).toEqual({});
    s.acceptManifest(manifest(9n, []));
    s.acceptManifest(manifest(10n, [])); // "10" < "9" as plain text: the padding must order it
    expect(s.readSync().manifestVersion).toBe(10n);
    expect(() => s.acceptManifest(manifest(10n, [["d1", "a"]]))).toThrow(StoreConflictError);
    expect(() => s.acceptManifest(manifest(2n, [["d1", "a"]]))).toThrow(StoreConflictError);
    // Refused means untouched: no deployment slipped in.
    expect(s.listDeployments()).toEqual([]);
    s.acceptManifest(manifest(U64_MAX, [["d1", "a"]]));
    const sync = s.readSync();
    expect(sync.manifestVersion).toBe(U64_MAX);
    expect(sync.etag).toBe(`"v${U64_MAX}"`);
    expect(Buffer.from(sync.manifestBody ?? []).toString()).toBe(`{"manifestVersion":${U64_MAX}}`);
    try {
      s.acceptManifest(manifest(U64_MAX, []));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(StoreConflictError);
      expect((e as StoreConflictError).stored).toBe(U64_MAX);
      expect((e as StoreConflictError).offered).toBe(U64_MAX);
    }
    expect(() => s.acceptManifest(manifest(U64_MAX + 1n, []))).toThrow(RangeError);
  });

  it("applies a whole manifest at once: added, revised, unchanged, absent and back again", () => {
    const s = openStore();
    s.acceptManifest(
      manifest(1n, [
        ["keep", "a"],
        ["change", "b"],
        ["drop", "c"],
      ]),
    );
    // The reconciler's progress on "keep" must survive a manifest that does not change it.
    const kept = s.getDeployment("keep");
    expect(kept?.state).toBe("pending");
    s.saveDeployment({
      ...record("keep", "installed"),
      digest: dgst("a"),
      appliedDigest: dgst("a"),
    });

    s.acceptManifest(
      manifest(5n, [
        ["keep", "a"],
        ["change", "d"],
        ["new", "e"],
      ]),
    );
    const byId = new Map(s.listDeployments().map((d) => [d.deploymentId, d]));
    expect([...byId.keys()]).toEqual(["keep", "change", "drop", "new"]);
    expect(byId.get("keep")).toMatchObject({ state: "installed", adoptedManifestVersion: 1n });
    expect(byId.get("keep")?.appliedDigest).toBe(dgst("a"));
    expect(byId.get("change")).toMatchObject({
      digest: dgst("d"),
      adoptedManifestVersion: 5n,
      desired: "present",
    });
    expect(Buffer.from(byId.get("change")?.yaml ?? []).toString()).toContain('revision: "d"');
    expect(byId.get("drop")).toMatchObject({ desired: "absent", adoptedManifestVersion: 5n });
    expect(byId.get("drop")?.digest).toBe(dgst("c"));
    expect(byId.get("new")).toMatchObject({
      desired: "present",
      state: "pending",
      adoptedManifestVersion: 5n,
      components: [],
    });

    // Absent stays absent (version untouched) until it reappears, then it is present again.
    s.acceptManifest(
      manifest(6n, [
        ["keep", "a"],
        ["change", "d"],
        ["new", "e"],
      ]),
    );
    expect(s.getDeployment("drop")).toMatchObject({
      desired: "absent",
      adoptedManifestVersion: 5n,
    });
    s.acceptManifest(
      manifest(7n, [
        ["keep", "a"],
        ["drop", "c"],
      ]),
    );
    expect(s.getDeployment("drop")).toMatchObject({
      desired: "present",
      adoptedManifestVersion: 7n,
    });
    expect(s.getDeployment("change")).toMatchObject({
      desired: "absent",
      adoptedManifestVersion: 7n,
    });
  });

  it("a failure mid-manifest leaves nothing of it behind", () => {
    const s = openStore();
    s.acceptManifest(manifest(1n, [["d1", "a"]]));
    const bad = manifest(2n, [["d2", "b"]]);
    // A second entry whose yaml is not bytes makes the insert throw after d2 was written.
    bad.deployments.push({ deploymentId: "d3", digest: dgst("c"), yaml: null as never });
    expect(() => s.acceptManifest(bad)).toThrow();
    expect(s.readSync().manifestVersion).toBe(1n);
    expect(s.listDeployments().map((d) => d.deploymentId)).toEqual(["d1"]);
    expect(s.getDeployment("d1")?.desired).toBe("present");
  });
});

describe("SqliteAgentStore deployments and outbox", () => {
  it("item 65: saveDeployment writes the state and its report in one transaction, seq strictly increasing", () => {
    const s = openStore();
    const seqs = [
      s.saveDeployment(record("d1", "installing"), enc("r1")),
      s.saveDeployment(record("d2", "installing"), enc("r2")),
      s.saveDeployment(record("d1", "installed"), enc("r3")),
    ];
    expect(s.saveDeployment(record("d2", "installing"))).toBeUndefined();
    expect(seqs.every((n, i) => typeof n === "number" && (i === 0 || n > (seqs[i - 1] ?? 0)))).toBe(
      true,
    );
    const pending = s.outboxPending(10);
    expect(pending.map((e) => [e.seq, e.deploymentId, Buffer.from(e.body).toString()])).toEqual([
      [seqs[0], "d1", "r1"],
      [seqs[1], "d2", "r2"],
      [seqs[2], "d1", "r3"],
    ]);
    expect(s.outboxPending(2)).toHaveLength(2);
    expect(s.getDeployment("d1")?.state).toBe("installed");

    // A report whose state cannot be written is not enqueued either.
    const broken = { ...record("d3", "installing"), yaml: null as never };
    expect(() => s.saveDeployment(broken, enc("r4"))).toThrow();
    expect(s.outboxPending(10)).toHaveLength(3);
    expect(s.getDeployment("d3")).toBeUndefined();
  });

  it("keeps delivered and dead-lettered entries out of pending, counts them, records attempts", () => {
    const s = openStore();
    const a = s.saveDeployment(record("d1", "installing"), enc("a")) as number;
    const b = s.saveDeployment(record("d1", "installed"), enc("b")) as number;
    const c = s.saveDeployment(record("d1", "failed"), enc("c")) as number;
    s.outboxFailed(a, "network: refused");
    expect(s.outboxPending(1)[0]).toMatchObject({
      seq: a,
      attempts: 1,
      lastError: "network: refused",
    });
    s.outboxDelivered(a);
    s.outboxDelivered(a); // a repeat changes nothing
    s.outboxDeadLetter(b, "422 #invalid-status");
    expect(s.outboxPending(10).map((e) => e.seq)).toEqual([c]);
    expect(s.outboxStats()).toEqual({ pending: 1, delivered: 1, deadLettered: 1 });
    expect(s.outboxDeadLetters(10)).toMatchObject([{ seq: b, lastError: "422 #invalid-status" }]);
  });

  it(`prunes delivered rows beyond the newest ${DELIVERED_KEEP} but keeps pending ones and the totals`, () => {
    const dir = freshDir();
    const s = openStore(dir);
    const firstPending = s.saveDeployment(record("d1", "installing"), enc("p")) as number;
    // Old delivered rows written in bulk (one fsync instead of a thousand).
    const raw = new Database(join(dir, STORE_FILE));
    const extra = 25;
    raw.transaction(() => {
      const ins = raw.prepare(
        "INSERT INTO outbox (deployment_id, body, enqueued_at, state, done_at) VALUES ('d1', x'00', 0, 'delivered', 0)",
      );
      for (let i = 0; i < DELIVERED_KEEP + extra; i++) ins.run();
    })();
    raw.close();
    const last = s.saveDeployment(record("d1", "installed"), enc("q")) as number;
    s.outboxDelivered(last);
    const check = new Database(join(dir, STORE_FILE), { readonly: true });
    try {
      const rows = check
        .prepare("SELECT COUNT(*) AS n, MIN(seq) AS lo FROM outbox WHERE state = 'delivered'")
        .get() as { n: number; lo: number };
      expect(rows.n).toBe(DELIVERED_KEEP);
      // The newest DELIVERED_KEEP survive: seqs last-999 .. last.
      expect(rows.lo).toBe(last - DELIVERED_KEEP + 1);
    } finally {
      check.close();
    }
    expect(s.outboxPending(10).map((e) => e.seq)).toEqual([firstPending]);
    expect(s.outboxStats()).toEqual({ pending: 1, delivered: 1, deadLettered: 0 });
  });

  it(`recentErrors is newest first and keeps the last ${ERRORS_KEEP}`, () => {
    const s = openStore();
    for (let i = 0; i < ERRORS_KEEP + 10; i++) s.recordError("digest-mismatch", `e${i}`);
    const all = s.recentErrors(1000);
    expect(all).toHaveLength(ERRORS_KEEP);
    expect(all[0]).toMatchObject({ kind: "digest-mismatch", message: `e${ERRORS_KEEP + 9}` });
    expect(all.at(-1)?.message).toBe("e10");
    expect(s.recentErrors(2).map((e) => e.message)).toEqual([
      `e${ERRORS_KEEP + 9}`,
      `e${ERRORS_KEEP + 8}`,
    ]);
  });

  it("forgetDeployment drops a record; trust and capabilities digests round-trip", () => {
    const s = openStore();
    s.saveDeployment(record("d1", "removed"));
    s.forgetDeployment("d1");
    expect(s.getDeployment("d1")).toBeUndefined();
    expect(s.readTrust()).toBeUndefined();
    s.saveTrust({
      bundleJson: enc('{"keys":[]}'),
      sequence: U64_MAX,
      refreshHintSeconds: 60,
      etag: '"t"',
      acceptedAt: 5,
    });
    expect(s.readTrust()).toEqual({
      bundleJson: enc('{"keys":[]}'),
      sequence: U64_MAX,
      refreshHintSeconds: 60,
      etag: '"t"',
      acceptedAt: 5,
    });
    s.saveCapabilitiesDigest("device-1", "sha256:x");
    expect(s.readCapabilitiesDigest("device-1")).toBe("sha256:x");
    expect(s.readCapabilitiesDigest("device-2")).toBeUndefined();
    s.saveCapabilitiesDigest("device-1", undefined);
    expect(s.readCapabilitiesDigest("device-1")).toBeUndefined();
  });
});

describe("SqliteAgentStore lifecycle", () => {
  it("reset wipes everything at once, and outbox seq still never repeats", () => {
    const s = openStore();
    s.acceptManifest(manifest(3n, [["d1", "a"]]));
    const before = s.saveDeployment(record("d1", "installed"), enc("x")) as number;
    s.recordError("k", "m");
    s.saveTrust({ bundleJson: enc("{}"), acceptedAt: 1 });
    s.saveCapabilitiesDigest("device-1", "sha256:y");
    s.reset();
    expect(s.readSync()).toEqual({});
    expect(s.listDeployments()).toEqual([]);
    expect(s.outboxPending(10)).toEqual([]);
    expect(s.outboxStats()).toEqual({ pending: 0, delivered: 0, deadLettered: 0 });
    expect(s.recentErrors(10)).toEqual([]);
    expect(s.readTrust()).toBeUndefined();
    expect(s.readCapabilitiesDigest("device-1")).toBeUndefined();
    // The floor is gone too: a WFM reset to version 1 is accepted after a DeviceDriver Reset.
    s.acceptManifest(manifest(1n, []));
    expect((s.saveDeployment(record("d1", "pending"), enc("y")) as number) > before).toBe(true);
  });

  it("reopen keeps every field, byte for byte", () => {
    const dir = freshDir();
    const s = SqliteAgentStore.open(dir);
    s.acceptManifest(manifest(42n, [["d1", "a"]]));
    const rec = {
      ...record("d1", "failed", { components: ["web", "db"], version: 42n, digest: dgst("a") }),
      error: { code: "DEPLOYMENT_ERROR", source: "d1-name", message: "db failed" },
      appliedDigest: dgst("0"),
    };
    rec.components[1] = {
      name: "db",
      state: "failed",
      error: { code: "E1", source: "db", message: "exit 1" },
      appliedSpecHash: "h1",
    };
    const seq = s.saveDeployment(rec, enc("report"));
    s.recordError("digest-mismatch", "d1");
    s.close();

    const again = openStore(dir);
    expect(again.schemaVersion).toBe(1);
    expect(again.readSync().manifestVersion).toBe(42n);
    expect(again.getDeployment("d1")).toEqual(rec);
    expect(again.outboxPending(5)).toMatchObject([{ seq, deploymentId: "d1", attempts: 0 }]);
    expect(again.recentErrors(5)).toMatchObject([{ kind: "digest-mismatch", message: "d1" }]);
  });

  it("openReadOnly reads a live store and cannot write; refuses a missing or newer state", () => {
    const dir = freshDir();
    expect(() => openReadOnly(dir)).toThrow(StoreUnavailableError);
    const s = openStore(dir);
    s.acceptManifest(manifest(7n, [["d1", "a"]]));
    const r = openReadOnly(dir);
    open.push(r);
    expect(r.readSync().manifestVersion).toBe(7n);
    // A commit by the running agent after the reader opened is visible to the reader.
    s.saveDeployment(record("d1", "installing"), enc("r"));
    expect(r.getDeployment("d1")?.state).toBe("installing");
    expect(r.outboxStats().pending).toBe(1);
    expect(() => (r as unknown as SqliteAgentStore).reset()).toThrow(/read-only/);
    r.close();
    s.close();
    // A stopped agent checkpointed and removed its WAL: the reader still opens and reads it.
    const stopped = openReadOnly(dir);
    expect(stopped.getDeployment("d1")?.state).toBe("installing");
    stopped.close();

    const db = new Database(join(dir, STORE_FILE));
    db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)").run();
    db.close();
    expect(() => openReadOnly(dir)).toThrow(SchemaTooNewError);
    expect(() => SqliteAgentStore.open(dir)).toThrow(SchemaTooNewError);
  });
});
