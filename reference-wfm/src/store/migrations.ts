import type Database from "better-sqlite3";

/**
 * The schema as an append-only list of migrations, recorded in `schema_migrations`, so later
 * issues add columns or tables by appending a step instead of editing a shipped one: a data
 * directory created by any earlier version upgrades in place, and one created by a newer version
 * is refused rather than misread.
 *
 * Conventions: times are epoch milliseconds (INTEGER); manifest versions are 20-digit TEXT (see
 * encodeU64 in @margo/proto/wire); exact byte fields are BLOBs; a deployment is tombstoned by `deleted_at`, never deleted
 * while live.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE clients (
    client_id    TEXT PRIMARY KEY,
    display_name TEXT,
    added_at     INTEGER NOT NULL,
    retired_at   INTEGER
  ) STRICT;

  -- One row per client that ever had a manifest; never removed, so versions survive a reset or
  -- a client's retirement and a re-admitted client continues its sequence.
  CREATE TABLE client_versions (
    client_id        TEXT PRIMARY KEY,
    manifest_version TEXT NOT NULL
  ) STRICT;

  CREATE TABLE manifests (
    client_id        TEXT PRIMARY KEY REFERENCES client_versions(client_id),
    manifest_version TEXT NOT NULL,
    body             BLOB NOT NULL,
    etag             TEXT NOT NULL,
    bundle_digest    TEXT,
    bundle_bytes     BLOB,
    CHECK ((bundle_digest IS NULL) = (bundle_bytes IS NULL))
  ) STRICT;

  CREATE TABLE devices (
    client_id    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    capabilities BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, device_id)
  ) STRICT;

  CREATE TABLE applications (
    application_id  TEXT NOT NULL,
    version         TEXT NOT NULL,
    oci_reference   TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    description     BLOB NOT NULL,
    registered_at   INTEGER NOT NULL,
    PRIMARY KEY (application_id, version)
  ) STRICT;

  CREATE TABLE deployments (
    deployment_id    TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    application_id   TEXT NOT NULL,
    version          TEXT NOT NULL,
    profile_id       TEXT NOT NULL,
    parameters_json  TEXT NOT NULL,
    yaml             BLOB NOT NULL,
    digest           TEXT NOT NULL,
    manifest_version TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER
  ) STRICT;
  CREATE INDEX deployments_by_client ON deployments (client_id, deleted_at, created_at, deployment_id);
  CREATE INDEX deployments_by_device ON deployments (client_id, device_id);

  CREATE TABLE statuses (
    client_id     TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    body          BLOB NOT NULL,
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (client_id, deployment_id)
  ) STRICT;
  `,
  // 2: the artifacts of a client's previous manifest (N-1) stay fetchable while N is current, so
  // a device that fetched N-1 just before a change can finish it. `revisions` holds exactly the
  // deployment revisions N-1 referenced (replaced on every commit, which prunes older ones).
  `
  CREATE TABLE revisions (
    client_id     TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    digest        TEXT NOT NULL,
    yaml          BLOB NOT NULL,
    PRIMARY KEY (client_id, deployment_id, digest)
  ) STRICT;
  ALTER TABLE manifests ADD COLUMN previous_bundle_digest TEXT;
  ALTER TABLE manifests ADD COLUMN previous_bundle_bytes BLOB;
  `,
  // 3: every accepted status report in receipt order, beside the latest-per-deployment table, so
  // a conformance run can prove that no report was lost, duplicated or reordered. `seq` is the
  // receipt order (AUTOINCREMENT: never reused, even after a reset emptied the table).
  `
  CREATE TABLE status_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    body          BLOB NOT NULL,
    received_at   INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX status_log_by_deployment ON status_log (client_id, deployment_id, seq);
  `,
];

/** Thrown when the database was written by a newer schema than this code knows. */
export class SchemaTooNewError extends Error {
  override readonly name = "SchemaTooNewError";
}

/**
 * migrate applies every step not yet recorded, each in its own IMMEDIATE transaction so two
 * processes opening a fresh file cannot both apply step 1. Returns the resulting schema version.
 */
export function migrate(db: Database.Database): number {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
  );
  const current = db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
  const record = db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
  const readVersion = () => Number((current.get() as { v: number | bigint }).v);
  const known = readVersion();
  if (known > MIGRATIONS.length) {
    throw new SchemaTooNewError(
      `database schema version ${known} is newer than this WFM knows (${MIGRATIONS.length}); use a newer margo-wfm`,
    );
  }
  for (let step = 1; step <= MIGRATIONS.length; step++) {
    db.transaction(() => {
      if (readVersion() >= step) return;
      db.exec(MIGRATIONS[step - 1] as string);
      record.run(step, Date.now());
    }).immediate();
  }
  return readVersion();
}
