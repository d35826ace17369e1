import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { decodeU64, encodeU64, U64_MAX } from "@margo/proto/wire";
import Database from "better-sqlite3";
import { WfmError } from "../core/errors.js";
import { migrate } from "./migrations.js";
import type {
  ApplicationRecord,
  ClientRecord,
  DeploymentQuery,
  DeploymentRecord,
  DesiredStateChange,
  DeviceRecord,
  ManifestRecord,
  PutDeviceOptions,
  StatusFilterRecord,
  StatusRecord,
  WfmStore,
} from "./store.js";

/** File name of the database inside a WFM data directory. */
export const STORE_FILE = "wfm.sqlite";

/** How long a write waits for another process holding the write lock before failing. */
const BUSY_TIMEOUT_MS = 5_000;

export interface SqliteStoreOptions {
  /** Wait for another process's write lock this long before answering `unavailable`. */
  busyTimeoutMs?: number;
}

interface ClientRow {
  client_id: string;
  display_name: string | null;
  added_at: number;
  retired_at: number | null;
}
interface DeviceRow {
  client_id: string;
  device_id: string;
  capabilities: Buffer;
  received_at: number;
}
interface ApplicationRow {
  application_id: string;
  version: string;
  oci_reference: string;
  manifest_digest: string;
  description: Buffer;
  registered_at: number;
}
interface DeploymentRow {
  deployment_id: string;
  client_id: string;
  device_id: string;
  application_id: string;
  version: string;
  profile_id: string;
  parameters_json: string;
  yaml: Buffer;
  digest: string;
  manifest_version: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}
interface ManifestRow {
  client_id: string;
  manifest_version: string;
  body: Buffer;
  etag: string;
  bundle_digest: string | null;
  bundle_bytes: Buffer | null;
}
interface StatusRow {
  client_id: string;
  deployment_id: string;
  body: Buffer;
  received_at: number;
}

/**
 * SqliteStore is the default WfmStore: one SQLite file in the data directory. WAL with
 * `synchronous=FULL` makes every committed transaction durable before its promise resolves (the
 * WAL is fsynced on each commit), so a kill -9 or power loss after an acknowledged write loses
 * nothing. better-sqlite3 is synchronous, so within one process transactions never interleave;
 * across processes IMMEDIATE transactions and busy_timeout serialize writers.
 */
export class SqliteStore implements WfmStore {
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  /** The applied schema version (for diagnostics and later migrations' tests). */
  readonly schemaVersion: number;

  private constructor(db: Database.Database, schemaVersion: number) {
    this.db = db;
    this.schemaVersion = schemaVersion;
    this.stmt = prepareStatements(db);
  }

  /**
   * Open (creating if needed) the database at `path`, apply pending migrations and set the
   * durability pragmas. `path` ":memory:" gives a throwaway store for unit tests of other layers.
   */
  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? BUSY_TIMEOUT_MS));
    const db = guard(() => new Database(path));
    try {
      guard(() => {
        db.pragma(`busy_timeout = ${busyTimeoutMs}`);
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
        db.pragma("foreign_keys = ON");
      });
      const version = guard(() => migrate(db));
      return new SqliteStore(db, version);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async putClient(client: ClientRecord): Promise<void> {
    guard(() =>
      this.stmt.putClient.run({
        client_id: client.clientId,
        display_name: client.displayName ?? null,
        added_at: client.addedAt.getTime(),
        retired_at: client.retiredAt?.getTime() ?? null,
      }),
    );
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const row = guard(() => this.stmt.getClient.get(clientId) as ClientRow | undefined);
    return row && toClient(row);
  }

  async listClients(): Promise<ClientRecord[]> {
    return guard(() => this.stmt.listClients.all() as ClientRow[]).map(toClient);
  }

  async putDevice(
    device: DeviceRecord,
    options: PutDeviceOptions = {},
  ): Promise<{ created: boolean }> {
    const parent = options.requireParent;
    return guard(() =>
      this.db
        .transaction(() => {
          if (parent !== undefined && !this.stmt.getDevice.get(device.clientId, parent)) {
            throw new WfmError(
              "gateway-not-found",
              `gateway ${JSON.stringify(parent)} has not reported its capabilities yet`,
            );
          }
          const existed = this.stmt.getDevice.get(device.clientId, device.deviceId) !== undefined;
          this.stmt.putDevice.run({
            client_id: device.clientId,
            device_id: device.deviceId,
            capabilities: device.capabilities,
            received_at: device.receivedAt.getTime(),
          });
          return { created: !existed };
        })
        .immediate(),
    );
  }

  async getDevice(clientId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const row = guard(() => this.stmt.getDevice.get(clientId, deviceId) as DeviceRow | undefined);
    return row && toDevice(row);
  }

  async deleteDevice(clientId: string, deviceId: string): Promise<boolean> {
    return guard(() => this.stmt.deleteDevice.run(clientId, deviceId).changes > 0);
  }

  async deleteDeviceTree(clientId: string, deviceId: string): Promise<number> {
    return guard(() =>
      this.db
        .transaction(() => {
          if (!this.stmt.getDevice.get(clientId, deviceId)) return 0;
          return this.stmt.deleteDeviceTree.run({ client_id: clientId, device_id: deviceId })
            .changes;
        })
        .immediate(),
    );
  }

  async listDevices(clientId?: string): Promise<DeviceRecord[]> {
    const rows = guard(
      () =>
        (clientId === undefined
          ? this.stmt.listDevices.all()
          : this.stmt.listDevicesOf.all(clientId)) as DeviceRow[],
    );
    return rows.map(toDevice);
  }

  async putApplication(app: ApplicationRecord): Promise<ApplicationRecord> {
    const row = guard(() =>
      this.db
        .transaction(() => {
          this.stmt.insertApplication.run({
            application_id: app.applicationId,
            version: app.version,
            oci_reference: app.ociReference,
            manifest_digest: app.manifestDigest,
            description: app.descriptionYaml,
            registered_at: app.registeredAt.getTime(),
          });
          return this.stmt.getApplicationVersion.get(
            app.applicationId,
            app.version,
          ) as ApplicationRow;
        })
        .immediate(),
    );
    return toApplication(row);
  }

  async getApplication(
    applicationId: string,
    version?: string,
  ): Promise<ApplicationRecord | undefined> {
    const row = guard(
      () =>
        (version === undefined
          ? this.stmt.getApplicationNewest.get(applicationId)
          : this.stmt.getApplicationVersion.get(applicationId, version)) as
          | ApplicationRow
          | undefined,
    );
    return row && toApplication(row);
  }

  async listApplications(): Promise<ApplicationRecord[]> {
    return guard(() => this.stmt.listApplications.all() as ApplicationRow[]).map(toApplication);
  }

  async commitDesiredState(clientId: string, change: DesiredStateChange): Promise<ManifestRecord> {
    const commit = this.db.transaction(() => this.commitInTransaction(clientId, change));
    return guard(() => commit.immediate());
  }

  /**
   * One client's desired-state commit; the caller holds the IMMEDIATE transaction. Errors thrown
   * by `change` must reach the caller unchanged; only SQLite's own are wrapped.
   */
  private commitInTransaction(clientId: string, change: DesiredStateChange): ManifestRecord {
    const versionRow = guard(
      () => this.stmt.getClientVersion.get(clientId) as { manifest_version: string } | undefined,
    );
    const previous = versionRow ? decodeU64(versionRow.manifest_version) : 0n;
    if (previous >= U64_MAX) {
      throw new WfmError(
        "internal",
        `client ${clientId} has reached manifestVersion 2^64-1 and cannot advance`,
      );
    }
    const nextVersion = previous + 1n;
    const live = guard(() => this.stmt.listLiveOfClient.all(clientId) as DeploymentRow[]).map(
      toDeployment,
    );
    const result = change({ deployments: live, nextVersion });
    if (typeof (result as unknown as PromiseLike<unknown>)?.then === "function") {
      throw new TypeError("DesiredStateChange must be synchronous; it returned a promise");
    }
    checkChange(clientId, nextVersion, result.manifest);
    guard(() => this.applyChange(clientId, nextVersion, live, result));
    return copyManifest(result.manifest);
  }

  private applyChange(
    clientId: string,
    nextVersion: bigint,
    live: DeploymentRecord[],
    result: ReturnType<DesiredStateChange>,
  ): void {
    const liveIds = new Set(live.map((d) => d.deploymentId));
    for (const d of result.upserts) {
      if (d.clientId !== clientId) {
        throw new WfmError(
          "internal",
          `deployment ${d.deploymentId} belongs to ${d.clientId}, not to ${clientId}`,
        );
      }
      const owner = this.stmt.getDeploymentOwner.get(d.deploymentId) as
        | { client_id: string }
        | undefined;
      if (owner && owner.client_id !== clientId) {
        throw new WfmError(
          "conflict",
          `deployment id ${d.deploymentId} is taken by another client`,
        );
      }
      this.stmt.putDeployment.run(fromDeployment(d));
    }
    const now = Date.now();
    for (const id of result.deletes) {
      if (!liveIds.has(id)) {
        throw new WfmError("not-found", `deployment ${id} is not live for client ${clientId}`);
      }
      this.stmt.tombstoneDeployment.run(now, id, clientId);
    }
    const version = encodeU64(nextVersion);
    this.stmt.putClientVersion.run(clientId, version);
    const m = result.manifest;
    this.retirePrevious(clientId, live, result);
    const before = this.stmt.getManifest.get(clientId) as ManifestRow | undefined;
    // The outgoing manifest's bundle stays fetchable while this one is current (unless equal).
    const keepPrevious =
      before?.bundle_digest != null && before.bundle_digest !== (m.bundle?.digest ?? null);
    this.stmt.putManifest.run({
      client_id: clientId,
      manifest_version: version,
      body: m.body,
      etag: m.etag,
      bundle_digest: m.bundle?.digest ?? null,
      bundle_bytes: m.bundle?.bytes ?? null,
      previous_bundle_digest: keepPrevious ? before.bundle_digest : null,
      previous_bundle_bytes: keepPrevious ? before.bundle_bytes : null,
    });
  }

  /**
   * Replaces the client's retired revisions with those the outgoing manifest referenced and the
   * new one does not (deleted, or replaced by an update). Revisions both reference are served
   * from `deployments`; anything older than the outgoing manifest is pruned here.
   */
  private retirePrevious(
    clientId: string,
    live: readonly DeploymentRecord[],
    result: ReturnType<DesiredStateChange>,
  ): void {
    const deleted = new Set(result.deletes);
    const upserted = new Map(result.upserts.map((d) => [d.deploymentId, d.digest]));
    this.stmt.clearRevisions.run(clientId);
    for (const d of live) {
      const stays =
        !deleted.has(d.deploymentId) && (upserted.get(d.deploymentId) ?? d.digest) === d.digest;
      if (stays) continue;
      this.stmt.putRevision.run({
        client_id: clientId,
        deployment_id: d.deploymentId,
        digest: d.digest,
        yaml: d.yaml,
      });
    }
  }

  async getManifest(clientId: string): Promise<ManifestRecord | undefined> {
    const row = guard(() => this.stmt.getManifest.get(clientId) as ManifestRow | undefined);
    return row && toManifest(row);
  }

  async getDeploymentYaml(
    clientId: string,
    deploymentId: string,
    digest: string,
  ): Promise<Buffer | undefined> {
    const row = guard(
      () =>
        this.stmt.getDeploymentYaml.get({
          client_id: clientId,
          deployment_id: deploymentId,
          digest,
        }) as { yaml: Buffer } | undefined,
    );
    return row?.yaml;
  }

  async getBundle(clientId: string, digest: string): Promise<Buffer | undefined> {
    const row = guard(
      () =>
        this.stmt.getBundle.get({ client_id: clientId, digest }) as { bytes: Buffer } | undefined,
    );
    return row?.bytes;
  }

  async listManifests(): Promise<ManifestRecord[]> {
    return guard(() => this.stmt.listManifests.all() as ManifestRow[]).map(toManifest);
  }

  async getDeployment(deploymentId: string): Promise<DeploymentRecord | undefined> {
    const row = guard(() => this.stmt.getDeployment.get(deploymentId) as DeploymentRow | undefined);
    return row && toDeployment(row);
  }

  async listDeployments(query: DeploymentQuery = {}): Promise<DeploymentRecord[]> {
    const rows = guard(
      () =>
        this.stmt.listDeployments.all({
          client_id: query.clientId ?? null,
          device_id: query.deviceId ?? null,
          include_deleted: query.includeDeleted ? 1 : 0,
        }) as DeploymentRow[],
    );
    return rows.map(toDeployment);
  }

  async putStatus(status: StatusRecord): Promise<{ created: boolean }> {
    return guard(() =>
      this.db
        .transaction(() => {
          const existed =
            this.stmt.getStatus.get(status.clientId, status.deploymentId) !== undefined;
          this.stmt.putStatus.run({
            client_id: status.clientId,
            deployment_id: status.deploymentId,
            body: status.body,
            received_at: status.receivedAt.getTime(),
          });
          this.stmt.appendStatusLog.run({
            client_id: status.clientId,
            deployment_id: status.deploymentId,
            body: status.body,
            received_at: status.receivedAt.getTime(),
          });
          return { created: !existed };
        })
        .immediate(),
    );
  }

  async listStatuses(filter: StatusFilterRecord = {}): Promise<StatusRecord[]> {
    const rows = guard(
      () =>
        (filter.includeHistory ? this.stmt.listStatusLog : this.stmt.listStatuses).all({
          client_id: filter.clientId ?? null,
          deployment_id: filter.deploymentId ?? null,
        }) as StatusRow[],
    );
    return rows.map(toStatus);
  }

  async resetData(): Promise<void> {
    guard(() =>
      this.db
        .transaction(() => {
          this.forgetData();
        })
        .immediate(),
    );
  }

  private forgetData(): void {
    this.db.exec(`
      DELETE FROM statuses;
      DELETE FROM status_log;
      DELETE FROM devices;
      DELETE FROM applications;
      DELETE FROM deployments WHERE deleted_at IS NOT NULL;
    `);
  }

  async resetAll(changeFor: (clientId: string) => DesiredStateChange): Promise<ManifestRecord[]> {
    const reset = this.db.transaction((): ManifestRecord[] => {
      const clients = guard(() => this.stmt.clientsWithLive.all() as { client_id: string }[]);
      const committed = clients.map(({ client_id }) =>
        this.commitInTransaction(client_id, changeFor(client_id)),
      );
      guard(() => {
        this.forgetData();
        this.db.exec(`
          DELETE FROM revisions;
          UPDATE manifests SET previous_bundle_digest = NULL, previous_bundle_bytes = NULL;
        `);
      });
      return committed;
    });
    return guard(() => reset.immediate());
  }

  /**
   * The connection's durability settings as SQLite reports them, so tests and `serve` diagnostics
   * can prove the promise "durable on resolve" rests on WAL + synchronous=FULL.
   */
  settings(): {
    journalMode: string;
    synchronous: number;
    foreignKeys: boolean;
    busyTimeoutMs: number;
  } {
    return guard(() => ({
      journalMode: String(this.db.pragma("journal_mode", { simple: true })),
      synchronous: Number(this.db.pragma("synchronous", { simple: true })),
      foreignKeys: Number(this.db.pragma("foreign_keys", { simple: true })) === 1,
      busyTimeoutMs: Number(this.db.pragma("busy_timeout", { simple: true })),
    }));
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    // A checkpoint folds the WAL back so the file is self-contained when copied after a clean stop.
    guard(() => {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
      this.db.close();
    });
  }
}

/** openSqliteStore is SqliteStore.open as a function, for callers that prefer one. */
export function openSqliteStore(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<SqliteStore> {
  return SqliteStore.open(path, options);
}

/**
 * guard turns SQLite's own failures (busy, I/O, corrupt file, closed handle) into the domain's
 * error so edges answer 503/500 without knowing SQLite; other errors pass through untouched.
 * The message is generic because edges may put it in a client-facing detail; SQLite's own
 * error (file paths, SQL) stays on `cause` for the logs.
 */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Database.SqliteError) {
      if (err.code === "SQLITE_BUSY" || err.code.startsWith("SQLITE_BUSY_")) {
        throw withCause(
          new WfmError("unavailable", "the store is busy; retry shortly", [], 1),
          err,
        );
      }
      throw withCause(new WfmError("internal", "the store failed"), err);
    }
    if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
      throw withCause(new WfmError("internal", "the store is closed"), err);
    }
    throw err;
  }
}

function withCause(error: WfmError, cause: unknown): WfmError {
  error.cause = cause;
  return error;
}

/** A manifest the core built for another client or version is a bug: refuse it, write nothing. */
function checkChange(clientId: string, nextVersion: bigint, manifest: ManifestRecord): void {
  if (manifest.clientId !== clientId) {
    throw new WfmError("internal", `manifest for ${manifest.clientId} committed as ${clientId}`);
  }
  if (manifest.manifestVersion !== nextVersion) {
    throw new WfmError(
      "internal",
      `manifest carries version ${manifest.manifestVersion}, the store expected ${nextVersion}`,
    );
  }
}

function prepareStatements(db: Database.Database) {
  const deploymentColumns =
    "deployment_id, client_id, device_id, application_id, version, profile_id, parameters_json, yaml, digest, manifest_version, created_at, updated_at, deleted_at";
  return {
    putClient: db.prepare(
      `INSERT INTO clients (client_id, display_name, added_at, retired_at)
       VALUES (@client_id, @display_name, @added_at, @retired_at)
       ON CONFLICT (client_id) DO UPDATE SET display_name = excluded.display_name,
         added_at = excluded.added_at, retired_at = excluded.retired_at`,
    ),
    getClient: db.prepare("SELECT * FROM clients WHERE client_id = ?"),
    listClients: db.prepare("SELECT * FROM clients ORDER BY added_at, client_id"),

    putDevice: db.prepare(
      `INSERT INTO devices (client_id, device_id, capabilities, received_at)
       VALUES (@client_id, @device_id, @capabilities, @received_at)
       ON CONFLICT (client_id, device_id) DO UPDATE SET capabilities = excluded.capabilities,
         received_at = excluded.received_at`,
    ),
    getDevice: db.prepare("SELECT * FROM devices WHERE client_id = ? AND device_id = ?"),
    deleteDevice: db.prepare("DELETE FROM devices WHERE client_id = ? AND device_id = ?"),
    // substr, not LIKE: "_" is an unreserved character that LIKE would read as a wildcard.
    deleteDeviceTree: db.prepare(
      `DELETE FROM devices WHERE client_id = @client_id AND (device_id = @device_id
         OR substr(device_id, 1, length(@device_id) + 1) = @device_id || '/')`,
    ),
    listDevices: db.prepare("SELECT * FROM devices ORDER BY client_id, device_id"),
    listDevicesOf: db.prepare("SELECT * FROM devices WHERE client_id = ? ORDER BY device_id"),

    insertApplication: db.prepare(
      `INSERT INTO applications (application_id, version, oci_reference, manifest_digest, description, registered_at)
       VALUES (@application_id, @version, @oci_reference, @manifest_digest, @description, @registered_at)
       ON CONFLICT (application_id, version) DO NOTHING`,
    ),
    getApplicationVersion: db.prepare(
      "SELECT * FROM applications WHERE application_id = ? AND version = ?",
    ),
    getApplicationNewest: db.prepare(
      "SELECT * FROM applications WHERE application_id = ? ORDER BY registered_at DESC, rowid DESC LIMIT 1",
    ),
    listApplications: db.prepare(
      "SELECT * FROM applications ORDER BY application_id, registered_at, version",
    ),

    getClientVersion: db.prepare(
      "SELECT manifest_version FROM client_versions WHERE client_id = ?",
    ),
    putClientVersion: db.prepare(
      `INSERT INTO client_versions (client_id, manifest_version) VALUES (?, ?)
       ON CONFLICT (client_id) DO UPDATE SET manifest_version = excluded.manifest_version`,
    ),
    putManifest: db.prepare(
      `INSERT INTO manifests (client_id, manifest_version, body, etag, bundle_digest, bundle_bytes,
         previous_bundle_digest, previous_bundle_bytes)
       VALUES (@client_id, @manifest_version, @body, @etag, @bundle_digest, @bundle_bytes,
         @previous_bundle_digest, @previous_bundle_bytes)
       ON CONFLICT (client_id) DO UPDATE SET manifest_version = excluded.manifest_version,
         body = excluded.body, etag = excluded.etag, bundle_digest = excluded.bundle_digest,
         bundle_bytes = excluded.bundle_bytes,
         previous_bundle_digest = excluded.previous_bundle_digest,
         previous_bundle_bytes = excluded.previous_bundle_bytes`,
    ),
    getBundle: db.prepare(
      `SELECT bundle_bytes AS bytes FROM manifests
         WHERE client_id = @client_id AND bundle_digest = @digest
       UNION ALL
       SELECT previous_bundle_bytes AS bytes FROM manifests
         WHERE client_id = @client_id AND previous_bundle_digest = @digest
       LIMIT 1`,
    ),
    clearRevisions: db.prepare("DELETE FROM revisions WHERE client_id = ?"),
    putRevision: db.prepare(
      `INSERT OR REPLACE INTO revisions (client_id, deployment_id, digest, yaml)
       VALUES (@client_id, @deployment_id, @digest, @yaml)`,
    ),
    getDeploymentYaml: db.prepare(
      `SELECT yaml FROM deployments
         WHERE deployment_id = @deployment_id AND client_id = @client_id AND digest = @digest
           AND deleted_at IS NULL
       UNION ALL
       SELECT yaml FROM revisions
         WHERE client_id = @client_id AND deployment_id = @deployment_id AND digest = @digest
       LIMIT 1`,
    ),
    clientsWithLive: db.prepare(
      "SELECT DISTINCT client_id FROM deployments WHERE deleted_at IS NULL ORDER BY client_id",
    ),
    getManifest: db.prepare("SELECT * FROM manifests WHERE client_id = ?"),
    listManifests: db.prepare("SELECT * FROM manifests ORDER BY client_id"),

    listLiveOfClient: db.prepare(
      `SELECT ${deploymentColumns} FROM deployments WHERE client_id = ? AND deleted_at IS NULL
       ORDER BY created_at, deployment_id`,
    ),
    getDeploymentOwner: db.prepare("SELECT client_id FROM deployments WHERE deployment_id = ?"),
    putDeployment: db.prepare(
      `INSERT INTO deployments (${deploymentColumns})
       VALUES (@deployment_id, @client_id, @device_id, @application_id, @version, @profile_id,
         @parameters_json, @yaml, @digest, @manifest_version, @created_at, @updated_at, @deleted_at)
       ON CONFLICT (deployment_id) DO UPDATE SET device_id = excluded.device_id,
         application_id = excluded.application_id, version = excluded.version,
         profile_id = excluded.profile_id, parameters_json = excluded.parameters_json,
         yaml = excluded.yaml, digest = excluded.digest, manifest_version = excluded.manifest_version,
         created_at = excluded.created_at, updated_at = excluded.updated_at,
         deleted_at = excluded.deleted_at`,
    ),
    tombstoneDeployment: db.prepare(
      "UPDATE deployments SET deleted_at = ? WHERE deployment_id = ? AND client_id = ? AND deleted_at IS NULL",
    ),
    getDeployment: db.prepare(
      `SELECT ${deploymentColumns} FROM deployments WHERE deployment_id = ?`,
    ),
    listDeployments: db.prepare(
      `SELECT ${deploymentColumns} FROM deployments
       WHERE (@client_id IS NULL OR client_id = @client_id)
         AND (@device_id IS NULL OR device_id = @device_id)
         AND (@include_deleted = 1 OR deleted_at IS NULL)
       ORDER BY created_at, deployment_id`,
    ),

    getStatus: db.prepare("SELECT 1 FROM statuses WHERE client_id = ? AND deployment_id = ?"),
    putStatus: db.prepare(
      `INSERT INTO statuses (client_id, deployment_id, body, received_at)
       VALUES (@client_id, @deployment_id, @body, @received_at)
       ON CONFLICT (client_id, deployment_id) DO UPDATE SET body = excluded.body,
         received_at = excluded.received_at`,
    ),
    listStatuses: db.prepare(
      `SELECT * FROM statuses
       WHERE (@client_id IS NULL OR client_id = @client_id)
         AND (@deployment_id IS NULL OR deployment_id = @deployment_id)
       ORDER BY client_id, received_at, deployment_id`,
    ),
    appendStatusLog: db.prepare(
      `INSERT INTO status_log (client_id, deployment_id, body, received_at)
       VALUES (@client_id, @deployment_id, @body, @received_at)`,
    ),
    // Receipt order across all clients: seq, not received_at (two reports may share a millisecond).
    listStatusLog: db.prepare(
      `SELECT client_id, deployment_id, body, received_at FROM status_log
       WHERE (@client_id IS NULL OR client_id = @client_id)
         AND (@deployment_id IS NULL OR deployment_id = @deployment_id)
       ORDER BY seq`,
    ),
  };
}

function toClient(row: ClientRow): ClientRecord {
  const client: ClientRecord = { clientId: row.client_id, addedAt: new Date(row.added_at) };
  if (row.display_name !== null) client.displayName = row.display_name;
  if (row.retired_at !== null) client.retiredAt = new Date(row.retired_at);
  return client;
}

function toDevice(row: DeviceRow): DeviceRecord {
  return {
    clientId: row.client_id,
    deviceId: row.device_id,
    capabilities: row.capabilities,
    receivedAt: new Date(row.received_at),
  };
}

function toApplication(row: ApplicationRow): ApplicationRecord {
  return {
    applicationId: row.application_id,
    version: row.version,
    ociReference: row.oci_reference,
    manifestDigest: row.manifest_digest,
    descriptionYaml: row.description,
    registeredAt: new Date(row.registered_at),
  };
}

function fromDeployment(d: DeploymentRecord): DeploymentRow {
  return {
    deployment_id: d.deploymentId,
    client_id: d.clientId,
    device_id: d.deviceId,
    application_id: d.applicationId,
    version: d.version,
    profile_id: d.profileId,
    parameters_json: d.parametersJson,
    yaml: d.yaml,
    digest: d.digest,
    manifest_version: encodeU64(d.manifestVersion),
    created_at: d.createdAt.getTime(),
    updated_at: d.updatedAt.getTime(),
    deleted_at: d.deletedAt?.getTime() ?? null,
  };
}

function toDeployment(row: DeploymentRow): DeploymentRecord {
  const d: DeploymentRecord = {
    deploymentId: row.deployment_id,
    clientId: row.client_id,
    deviceId: row.device_id,
    applicationId: row.application_id,
    version: row.version,
    profileId: row.profile_id,
    parametersJson: row.parameters_json,
    yaml: row.yaml,
    digest: row.digest,
    manifestVersion: decodeU64(row.manifest_version),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.deleted_at !== null) d.deletedAt = new Date(row.deleted_at);
  return d;
}

function toManifest(row: ManifestRow): ManifestRecord {
  const m: ManifestRecord = {
    clientId: row.client_id,
    manifestVersion: decodeU64(row.manifest_version),
    body: row.body,
    etag: row.etag,
  };
  if (row.bundle_digest !== null && row.bundle_bytes !== null) {
    m.bundle = { digest: row.bundle_digest, bytes: row.bundle_bytes };
  }
  return m;
}

/** The returned manifest must not alias buffers the caller may later reuse or mutate. */
function copyManifest(m: ManifestRecord): ManifestRecord {
  const copy: ManifestRecord = {
    clientId: m.clientId,
    manifestVersion: m.manifestVersion,
    body: Buffer.from(m.body),
    etag: m.etag,
  };
  if (m.bundle) copy.bundle = { digest: m.bundle.digest, bytes: Buffer.from(m.bundle.bytes) };
  return copy;
}

function toStatus(row: StatusRow): StatusRecord {
  return {
    clientId: row.client_id,
    deploymentId: row.deployment_id,
    body: row.body,
    receivedAt: new Date(row.received_at),
  };
}
