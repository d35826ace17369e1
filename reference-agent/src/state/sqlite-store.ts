import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { decodeU64, encodeU64 } from "@margo/proto/wire";
import Database from "better-sqlite3";
import { mutant } from "../mutants.js";
import { MIGRATIONS, migrate, SchemaTooNewError, schemaVersion } from "./migrations.js";
import {
  type AcceptedManifest,
  type AgentStore,
  type ComponentRecord,
  type DeploymentRecord,
  type ErrorRecord,
  type OutboxEntry,
  type OutboxStats,
  type StatusErrorRecord,
  StoreConflictError,
  type SyncRecord,
  type TrustRecord,
  type WireState,
} from "./store.js";

/** File name of the database inside the agent's state directory. */
export const STORE_FILE = "agent.sqlite";

/** Delivered outbox rows kept for `margo-agent status`; older ones are pruned (totals are kept). */
export const DELIVERED_KEEP = 1000;
/** recordError keeps this many; a flapping WFM must not grow the file without bound. */
export const ERRORS_KEEP = 200;

/** How long a write waits for another connection (a read-only `status`) before failing. */
const BUSY_TIMEOUT_MS = 5_000;

/** The read side of the store: what `margo-agent status` may touch while an agent runs. */
export type AgentStoreReader = Pick<
  AgentStore,
  | "readSync"
  | "listDeployments"
  | "getDeployment"
  | "outboxPending"
  | "outboxStats"
  | "recentErrors"
  | "readTrust"
  | "readCapabilitiesDigest"
  | "close"
> & {
  /** Entries the WFM refused for good, newest first, with the reason (not in AgentStore). */
  outboxDeadLetters(limit: number): OutboxEntry[];
  /**
   * The last `limit` delivered entries (at most DELIVERED_KEEP survive pruning), oldest first:
   * what the WFM should hold, in the order it was sent, so a test can compare the two.
   */
  outboxDeliveredEntries(limit: number): OutboxEntry[];
};

/** The state directory cannot be opened read-only (no agent ever ran there, or an older schema). */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

interface SyncRow {
  manifest_version: string;
  etag: string | null;
  manifest_body: Buffer | null;
  accepted_at: number;
}
interface DeploymentRow {
  deployment_id: string;
  digest: string;
  yaml: Buffer;
  adopted_manifest_version: string;
  desired: "present" | "absent";
  state: string;
  error_json: string | null;
  components_json: string;
  applied_digest: string | null;
  updated_at: number;
}
interface OutboxRow {
  seq: number;
  deployment_id: string;
  body: Buffer;
  enqueued_at: number;
  attempts: number;
  last_error: string | null;
}
interface TrustRow {
  bundle_json: Buffer;
  sequence: string | null;
  refresh_hint_seconds: number | null;
  etag: string | null;
  accepted_at: number;
}

function prepare(db: Database.Database, writable: boolean) {
  const read = {
    readSync: db.prepare("SELECT * FROM sync WHERE id = 1"),
    listDeployments: db.prepare("SELECT * FROM deployments ORDER BY rowid"),
    getDeployment: db.prepare("SELECT * FROM deployments WHERE deployment_id = ?"),
    outboxPending: db.prepare("SELECT * FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?"),
    outboxDead: db.prepare("SELECT * FROM outbox WHERE state = 'dead' ORDER BY seq DESC LIMIT ?"),
    outboxDone: db.prepare(
      `SELECT * FROM (SELECT * FROM outbox WHERE state = 'delivered' ORDER BY seq DESC LIMIT ?)
       ORDER BY seq`,
    ),
    countPending: db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'"),
    counter: db.prepare("SELECT value FROM counters WHERE name = ?"),
    recentErrors: db.prepare("SELECT at, kind, message FROM errors ORDER BY id DESC LIMIT ?"),
    readTrust: db.prepare("SELECT * FROM trust WHERE id = 1"),
    readCapabilities: db.prepare("SELECT digest FROM capabilities WHERE device_id = ?"),
  };
  if (!writable) return { read, write: undefined };
  const write = {
    putSync: db.prepare(
      `INSERT INTO sync (id, manifest_version, etag, manifest_body, accepted_at)
       VALUES (1, @manifest_version, @etag, @manifest_body, @accepted_at)
       ON CONFLICT (id) DO UPDATE SET manifest_version = excluded.manifest_version,
         etag = excluded.etag, manifest_body = excluded.manifest_body, accepted_at = excluded.accepted_at`,
    ),
    putDeployment: db.prepare(
      `INSERT INTO deployments (deployment_id, digest, yaml, adopted_manifest_version, desired, state,
         error_json, components_json, applied_digest, updated_at)
       VALUES (@deployment_id, @digest, @yaml, @adopted_manifest_version, @desired, @state,
         @error_json, @components_json, @applied_digest, @updated_at)
       ON CONFLICT (deployment_id) DO UPDATE SET digest = excluded.digest, yaml = excluded.yaml,
         adopted_manifest_version = excluded.adopted_manifest_version, desired = excluded.desired,
         state = excluded.state, error_json = excluded.error_json,
         components_json = excluded.components_json, applied_digest = excluded.applied_digest,
         updated_at = excluded.updated_at`,
    ),
    reviseDeployment: db.prepare(
      `UPDATE deployments SET digest = ?, yaml = ?, adopted_manifest_version = ?, desired = 'present',
         updated_at = ? WHERE deployment_id = ?`,
    ),
    markAbsent: db.prepare(
      `UPDATE deployments SET desired = 'absent', adopted_manifest_version = ?, updated_at = ?
       WHERE deployment_id = ?`,
    ),
    forgetDeployment: db.prepare("DELETE FROM deployments WHERE deployment_id = ?"),
    enqueue: db.prepare(
      "INSERT INTO outbox (deployment_id, body, enqueued_at) VALUES (?, ?, ?) RETURNING seq",
    ),
    delivered: db.prepare(
      `UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL, done_at = ?
       WHERE seq = ? AND state = 'pending'`,
    ),
    failed: db.prepare(
      "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ? AND state = 'pending'",
    ),
    dead: db.prepare(
      `UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?, done_at = ?
       WHERE seq = ? AND state = 'pending'`,
    ),
    bump: db.prepare(
      `INSERT INTO counters (name, value) VALUES (?, 1)
       ON CONFLICT (name) DO UPDATE SET value = value + 1`,
    ),
    pruneDelivered: db.prepare(
      `DELETE FROM outbox WHERE state = 'delivered' AND seq < (
         SELECT seq FROM outbox WHERE state = 'delivered' ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
    ),
    recordError: db.prepare("INSERT INTO errors (at, kind, message) VALUES (?, ?, ?)"),
    pruneErrors: db.prepare(
      `DELETE FROM errors WHERE id <= (SELECT id FROM errors ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    ),
    putTrust: db.prepare(
      `INSERT INTO trust (id, bundle_json, sequence, refresh_hint_seconds, etag, accepted_at)
       VALUES (1, @bundle_json, @sequence, @refresh_hint_seconds, @etag, @accepted_at)
       ON CONFLICT (id) DO UPDATE SET bundle_json = excluded.bundle_json,
         sequence = excluded.sequence, refresh_hint_seconds = excluded.refresh_hint_seconds,
         etag = excluded.etag, accepted_at = excluded.accepted_at`,
    ),
    putCapabilities: db.prepare(
      `INSERT INTO capabilities (device_id, digest) VALUES (?, ?)
       ON CONFLICT (device_id) DO UPDATE SET digest = excluded.digest`,
    ),
    deleteCapabilities: db.prepare("DELETE FROM capabilities WHERE device_id = ?"),
  };
  return { read, write };
}

type Statements = ReturnType<typeof prepare>;

/**
 * SqliteAgentStore is the agent's AgentStore: one SQLite file, `<stateDir>/agent.sqlite`. WAL with
 * synchronous=FULL fsyncs the log on every commit, so a method that returned is durable through
 * kill -9 or power loss. better-sqlite3 is synchronous, so calls never interleave within the
 * process; IMMEDIATE transactions keep a second process (a stray agent) from interleaving writes.
 */
export class SqliteAgentStore implements AgentStore, AgentStoreReader {
  private readonly read: Statements["read"];
  private readonly writeStmts: Statements["write"];

  private constructor(
    private readonly db: Database.Database,
    /** The applied schema version (diagnostics). */
    readonly schemaVersion: number,
    writable: boolean,
  ) {
    const s = prepare(db, writable);
    this.read = s.read;
    this.writeStmts = s.write;
  }

  /** Open (creating if needed) `<stateDir>/agent.sqlite`, migrate, and set durability pragmas. */
  static open(stateDir: string): SqliteAgentStore {
    mkdirSync(stateDir, { recursive: true });
    const db = new Database(join(stateDir, STORE_FILE));
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      const version = migrate(db);
      return new SqliteAgentStore(db, version, true);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** @internal used by openReadOnly. */
  static wrapReadOnly(db: Database.Database, version: number): SqliteAgentStore {
    return new SqliteAgentStore(db, version, false);
  }

  private get write(): NonNullable<Statements["write"]> {
    if (!this.writeStmts) throw new TypeError("this store was opened read-only");
    return this.writeStmts;
  }

  readSync(): SyncRecord {
    const row = this.read.readSync.get() as SyncRow | undefined;
    if (!row) return {};
    return {
      manifestVersion: decodeU64(row.manifest_version),
      ...(row.etag !== null ? { etag: row.etag } : {}),
      ...(row.manifest_body !== null ? { manifestBody: new Uint8Array(row.manifest_body) } : {}),
      acceptedAt: row.accepted_at,
    };
  }

  acceptManifest(m: AcceptedManifest): void {
    const w = this.write;
    const offered = encodeU64(m.manifestVersion);
    this.db
      .transaction(() => {
        // The floor is checked inside the write transaction, so no second writer can slip a
        // version in between a caller's check and this commit (item 51).
        const row = this.read.readSync.get() as SyncRow | undefined;
        if (row && offered <= row.manifest_version && !mutant("rollback-accepted")) {
          throw new StoreConflictError(decodeU64(row.manifest_version), m.manifestVersion);
        }
        const now = Date.now();
        const listed = new Set<string>();
        for (const d of m.deployments) {
          listed.add(d.deploymentId);
          const existing = this.read.getDeployment.get(d.deploymentId) as DeploymentRow | undefined;
          if (!existing) {
            w.putDeployment.run({
              deployment_id: d.deploymentId,
              digest: d.digest,
              yaml: Buffer.from(d.yaml),
              adopted_manifest_version: offered,
              desired: "present",
              state: "pending",
              error_json: null,
              components_json: "[]",
              applied_digest: null,
              updated_at: now,
            });
          } else if (existing.digest !== d.digest || existing.desired === "absent") {
            // A new revision, or a deployment that left and came back: the device takes its
            // current revision from this manifest, so adoptedManifestVersion moves (digest 7).
            w.reviseDeployment.run(d.digest, Buffer.from(d.yaml), offered, now, d.deploymentId);
          }
        }
        for (const existing of this.read.listDeployments.all() as DeploymentRow[]) {
          if (existing.desired === "present" && !listed.has(existing.deployment_id)) {
            w.markAbsent.run(offered, now, existing.deployment_id);
          }
        }
        w.putSync.run({
          manifest_version: offered,
          etag: m.etag,
          manifest_body: Buffer.from(m.body),
          accepted_at: now,
        });
      })
      .immediate();
  }

  listDeployments(): DeploymentRecord[] {
    return (this.read.listDeployments.all() as DeploymentRow[]).map(toDeployment);
  }

  getDeployment(deploymentId: string): DeploymentRecord | undefined {
    const row = this.read.getDeployment.get(deploymentId) as DeploymentRow | undefined;
    return row && toDeployment(row);
  }

  saveDeployment(rec: DeploymentRecord, report?: Uint8Array): number | undefined {
    const w = this.write;
    return this.db
      .transaction(() => {
        w.putDeployment.run(fromDeployment(rec));
        if (report === undefined) return undefined;
        const row = w.enqueue.get(rec.deploymentId, Buffer.from(report), Date.now()) as {
          seq: number;
        };
        return row.seq;
      })
      .immediate();
  }

  forgetDeployment(deploymentId: string): void {
    this.write.forgetDeployment.run(deploymentId);
  }

  outboxPending(limit: number): OutboxEntry[] {
    return (this.read.outboxPending.all(limit) as OutboxRow[]).map(toOutbox);
  }

  outboxDeadLetters(limit: number): OutboxEntry[] {
    return (this.read.outboxDead.all(limit) as OutboxRow[]).map(toOutbox);
  }

  outboxDeliveredEntries(limit: number): OutboxEntry[] {
    return (this.read.outboxDone.all(limit) as OutboxRow[]).map(toOutbox);
  }

  outboxDelivered(seq: number): void {
    const w = this.write;
    this.db
      .transaction(() => {
        if (w.delivered.run(Date.now(), seq).changes === 0) return;
        w.bump.run("delivered");
        w.pruneDelivered.run(DELIVERED_KEEP - 1);
      })
      .immediate();
  }

  outboxFailed(seq: number, error: string): void {
    this.write.failed.run(error, seq);
  }

  outboxDeadLetter(seq: number, reason: string): void {
    const w = this.write;
    this.db
      .transaction(() => {
        if (w.dead.run(reason, Date.now(), seq).changes === 0) return;
        w.bump.run("dead");
      })
      .immediate();
  }

  outboxStats(): OutboxStats {
    const counter = (name: string) =>
      Number((this.read.counter.get(name) as { value: number } | undefined)?.value ?? 0);
    return {
      pending: Number((this.read.countPending.get() as { n: number }).n),
      delivered: counter("delivered"),
      deadLettered: counter("dead"),
    };
  }

  recordError(kind: string, message: string): void {
    const w = this.write;
    this.db
      .transaction(() => {
        w.recordError.run(Date.now(), kind, message);
        w.pruneErrors.run(ERRORS_KEEP);
      })
      .immediate();
  }

  recentErrors(limit: number): ErrorRecord[] {
    return this.read.recentErrors.all(limit) as ErrorRecord[];
  }

  readTrust(): TrustRecord | undefined {
    const row = this.read.readTrust.get() as TrustRow | undefined;
    if (!row) return undefined;
    return {
      bundleJson: new Uint8Array(row.bundle_json),
      ...(row.sequence !== null ? { sequence: decodeU64(row.sequence) } : {}),
      ...(row.refresh_hint_seconds !== null
        ? { refreshHintSeconds: row.refresh_hint_seconds }
        : {}),
      ...(row.etag !== null ? { etag: row.etag } : {}),
      acceptedAt: row.accepted_at,
    };
  }

  saveTrust(t: TrustRecord): void {
    this.write.putTrust.run({
      bundle_json: Buffer.from(t.bundleJson),
      sequence: t.sequence === undefined ? null : encodeU64(t.sequence),
      refresh_hint_seconds: t.refreshHintSeconds ?? null,
      etag: t.etag ?? null,
      accepted_at: t.acceptedAt,
    });
  }

  readCapabilitiesDigest(deviceId: string): string | undefined {
    return (this.read.readCapabilities.get(deviceId) as { digest: string } | undefined)?.digest;
  }

  saveCapabilitiesDigest(deviceId: string, digest: string | undefined): void {
    if (digest === undefined) this.write.deleteCapabilities.run(deviceId);
    else this.write.putCapabilities.run(deviceId, digest);
  }

  reset(): void {
    this.write; // throws on a read-only store before anything is touched
    // sqlite_sequence is kept on purpose: outbox seq never repeats, even across a reset.
    this.db
      .transaction(() => {
        for (const table of [
          "sync",
          "deployments",
          "outbox",
          "counters",
          "errors",
          "trust",
          "capabilities",
        ]) {
          this.db.exec(`DELETE FROM ${table}`);
        }
      })
      .immediate();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Open the state of a running (or stopped) agent for reading only (`margo-agent status`). WAL
 * lets a reader see the last committed state while the agent writes; nothing here can write.
 */
export function openReadOnly(stateDir: string): AgentStoreReader {
  const file = join(stateDir, STORE_FILE);
  if (!existsSync(file)) {
    throw new StoreUnavailableError(`no agent state at ${file} (has the agent run here?)`);
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const version = schemaVersion(db);
    if (version > MIGRATIONS.length) {
      throw new SchemaTooNewError(
        `agent state schema ${version} is newer than this margo-agent knows (${MIGRATIONS.length})`,
      );
    }
    if (version < MIGRATIONS.length) {
      throw new StoreUnavailableError(
        `agent state schema ${version} is older than ${MIGRATIONS.length}; start the agent once to upgrade it`,
      );
    }
    return SqliteAgentStore.wrapReadOnly(db, version);
  } catch (err) {
    db.close();
    throw err;
  }
}

function toDeployment(row: DeploymentRow): DeploymentRecord {
  return {
    deploymentId: row.deployment_id,
    digest: row.digest,
    yaml: new Uint8Array(row.yaml),
    adoptedManifestVersion: decodeU64(row.adopted_manifest_version),
    desired: row.desired,
    state: row.state as WireState,
    ...(row.error_json !== null ? { error: JSON.parse(row.error_json) as StatusErrorRecord } : {}),
    components: JSON.parse(row.components_json) as ComponentRecord[],
    ...(row.applied_digest !== null ? { appliedDigest: row.applied_digest } : {}),
    updatedAt: row.updated_at,
  };
}

function fromDeployment(rec: DeploymentRecord): DeploymentRow {
  return {
    deployment_id: rec.deploymentId,
    digest: rec.digest,
    yaml: Buffer.from(rec.yaml),
    adopted_manifest_version: encodeU64(rec.adoptedManifestVersion),
    desired: rec.desired,
    state: rec.state,
    error_json: rec.error ? JSON.stringify(rec.error) : null,
    // Only the contract's fields: a caller's extra properties must not leak into the file.
    components_json: JSON.stringify(
      rec.components.map((c) => ({
        name: c.name,
        state: c.state,
        ...(c.error ? { error: c.error } : {}),
        ...(c.appliedSpecHash !== undefined ? { appliedSpecHash: c.appliedSpecHash } : {}),
      })),
    ),
    applied_digest: rec.appliedDigest ?? null,
    updated_at: rec.updatedAt,
  };
}

function toOutbox(row: OutboxRow): OutboxEntry {
  return {
    seq: row.seq,
    deploymentId: row.deployment_id,
    body: new Uint8Array(row.body),
    enqueuedAt: row.enqueued_at,
    attempts: row.attempts,
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  };
}
