import type Database from "better-sqlite3";

/**
 * The agent's schema as an append-only list of steps recorded in `schema_migrations`: a later
 * version appends a step instead of editing a shipped one, so a state directory written by any
 * earlier agent upgrades in place and one written by a newer agent is refused, not misread.
 *
 * Conventions: times are epoch ms; u64 versions are 20-digit TEXT (`encodeU64` in @margo/proto/wire); exact bytes are BLOBs.
 */
export const MIGRATIONS: readonly string[] = [
  `
  -- The single last accepted manifest: rollback floor (item 51) and If-None-Match value (item 54).
  CREATE TABLE sync (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    manifest_version TEXT NOT NULL,
    etag             TEXT,
    manifest_body    BLOB,
    accepted_at      INTEGER NOT NULL
  ) STRICT;

  -- rowid order = the order deployments were first seen, kept across updates by upsert.
  CREATE TABLE deployments (
    deployment_id            TEXT PRIMARY KEY,
    digest                   TEXT NOT NULL,
    yaml                     BLOB NOT NULL,
    adopted_manifest_version TEXT NOT NULL,
    desired                  TEXT NOT NULL CHECK (desired IN ('present', 'absent')),
    state                    TEXT NOT NULL,
    error_json               TEXT,
    components_json          TEXT NOT NULL,
    applied_digest           TEXT,
    updated_at               INTEGER NOT NULL
  ) STRICT;

  -- AUTOINCREMENT: seq never reuses a number, even after pruning or a reset, so delivery order and
  -- log lines stay unambiguous for the life of the state directory.
  CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    body          BLOB NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    done_at       INTEGER
  ) STRICT;
  CREATE INDEX outbox_by_state ON outbox (state, seq);

  -- Totals survive pruning of old delivered rows, so stats stay true for the life of the directory.
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE errors (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
  ) STRICT;

  CREATE TABLE trust (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    bundle_json          BLOB NOT NULL,
    sequence             TEXT,
    refresh_hint_seconds INTEGER,
    etag                 TEXT,
    accepted_at          INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE capabilities (
    device_id TEXT PRIMARY KEY,
    digest    TEXT NOT NULL
  ) STRICT;
  `,
];

/** The state directory was written by a newer agent than this one. */
export class SchemaTooNewError extends Error {
  override readonly name = "SchemaTooNewError";
}

/** The schema a read-only opener finds, or throws when it cannot be read safely. */
export function schemaVersion(db: Database.Database): number {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!table) return 0;
  const row = db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as {
    v: number | bigint;
  };
  return Number(row.v);
}

/**
 * Apply every step not yet recorded, each in its own IMMEDIATE transaction so two processes
 * opening a fresh directory cannot both apply a step. Returns the resulting schema version.
 */
export function migrate(db: Database.Database): number {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
  );
  const record = db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
  const known = schemaVersion(db);
  if (known > MIGRATIONS.length) {
    throw new SchemaTooNewError(
      `agent state schema ${known} is newer than this agent knows (${MIGRATIONS.length}); use a newer margo-agent`,
    );
  }
  for (let step = 1; step <= MIGRATIONS.length; step++) {
    db.transaction(() => {
      if (schemaVersion(db) >= step) return;
      db.exec(MIGRATIONS[step - 1] as string);
      record.run(step, Date.now());
    }).immediate();
  }
  return schemaVersion(db);
}
