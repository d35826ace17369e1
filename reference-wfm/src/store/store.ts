/**
 * The WFM's one persistence interface. SQLite backs it today (sqlite-store.ts); a shared database
 * can back several replicas later, which is why every method is async and every change that must
 * be atomic is one method. A method resolves only once its write is durable: a kill -9 right after
 * must lose nothing (issue 3, item 6). Byte fields are stored and returned exactly.
 */

export interface ClientRecord {
  clientId: string;
  displayName?: string;
  addedAt: Date;
  /** Set when the operator removed the client; the record (and its version sequence) stays. */
  retiredAt?: Date;
}

export interface DeviceRecord {
  clientId: string;
  deviceId: string;
  /** The capabilities JSON body exactly as the device sent it. */
  capabilities: Buffer;
  receivedAt: Date;
}

export interface ApplicationRecord {
  applicationId: string;
  version: string;
  ociReference: string;
  /** Digest of the package's OCI manifest: pins exactly what was registered. */
  manifestDigest: string;
  /** margo.yaml exactly as found in the package. */
  descriptionYaml: Buffer;
  registeredAt: Date;
}

export interface DeploymentRecord {
  deploymentId: string;
  clientId: string;
  deviceId: string;
  applicationId: string;
  version: string;
  profileId: string;
  /** The operator's parameter overrides as JSON text (defaults are not stored here). */
  parametersJson: string;
  /** The ApplicationDeployment YAML exactly as served; `digest` is its sha256. */
  yaml: Buffer;
  digest: string;
  /** manifestVersion of the first manifest that carried this revision. */
  manifestVersion: bigint;
  createdAt: Date;
  updatedAt: Date;
  /** Set when removed from the manifest; kept so that later `removed` reports are still accepted. */
  deletedAt?: Date;
}

/** One client's current State Manifest and the bundle it references, both exact bytes. */
export interface ManifestRecord {
  clientId: string;
  manifestVersion: bigint;
  body: Buffer;
  /** Quoted `"sha256:<hex>"` of `body`. */
  etag: string;
  /** Absent when the manifest has no deployments (`bundle: null`). */
  bundle?: { digest: string; bytes: Buffer };
}

export interface StatusRecord {
  clientId: string;
  deploymentId: string;
  /** The status JSON body exactly as the device sent it. */
  body: Buffer;
  receivedAt: Date;
}

/**
 * What the core computes from a client's live deployments inside a desired-state commit. Must be
 * synchronous and pure: the store calls it inside its transaction.
 */
export type DesiredStateChange = (current: {
  /** The client's live (not deleted) deployments, oldest first. */
  deployments: DeploymentRecord[];
  /** The version the new manifest must carry: previous + 1 (1 for a client's first manifest). */
  nextVersion: bigint;
}) => {
  /** Deployments to insert or replace (matched by deploymentId). */
  upserts: DeploymentRecord[];
  /** deploymentIds to mark deleted. */
  deletes: string[];
  manifest: ManifestRecord;
};

export interface StatusFilterRecord {
  clientId?: string;
  deploymentId?: string;
  /**
   * Every accepted report in receipt order (oldest first) instead of the latest per deployment:
   * the evidence that a device lost, duplicated or reordered none of its reports.
   */
  includeHistory?: boolean;
}

export interface DeploymentQuery {
  clientId?: string;
  deviceId?: string;
  /** Include deleted (tombstoned) deployments; default false. */
  includeDeleted?: boolean;
}

export interface PutDeviceOptions {
  /** deviceId of the gateway that must already be registered for the same client. */
  requireParent?: string;
}

export interface WfmStore {
  /** Insert or update (re-admit clears retiredAt). */
  putClient(client: ClientRecord): Promise<void>;
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  listClients(): Promise<ClientRecord[]>;

  /**
   * Create or replace; `created` is true when no live record existed. With `requireParent`, the
   * write happens only if the client's device of that id exists, checked in the same
   * transaction (a concurrent gateway delete cannot leave an orphan); otherwise it throws
   * WfmError `gateway-not-found` and writes nothing.
   */
  putDevice(device: DeviceRecord, options?: PutDeviceOptions): Promise<{ created: boolean }>;
  getDevice(clientId: string, deviceId: string): Promise<DeviceRecord | undefined>;
  /** False when there was nothing to delete. */
  deleteDevice(clientId: string, deviceId: string): Promise<boolean>;
  /**
   * Delete a device and every device under it (`deviceId/...`) in one transaction, so a crash
   * cannot leave children of a deleted gateway. Returns how many records went; 0 (and nothing
   * deleted) when `deviceId` itself is not registered.
   */
  deleteDeviceTree(clientId: string, deviceId: string): Promise<number>;
  listDevices(clientId?: string): Promise<DeviceRecord[]>;

  /** Insert, or keep the existing record when (applicationId, version) already exists. */
  putApplication(app: ApplicationRecord): Promise<ApplicationRecord>;
  /** Newest registered (by registeredAt) when `version` is absent. */
  getApplication(applicationId: string, version?: string): Promise<ApplicationRecord | undefined>;
  listApplications(): Promise<ApplicationRecord[]>;

  /**
   * Atomically: read the client's live deployments, run `change`, write its upserts, deletes and
   * the new manifest, advance the client's version. Concurrent commits for one client serialize;
   * the version therefore strictly increases, across restarts too.
   */
  commitDesiredState(clientId: string, change: DesiredStateChange): Promise<ManifestRecord>;
  getManifest(clientId: string): Promise<ManifestRecord | undefined>;
  /**
   * The YAML of `deploymentId` whose digest is `digest`, if the client's current manifest or the
   * one before it references it: a device that fetched manifest N-1 just before N was committed
   * can still complete it. Older revisions are pruned on commit.
   */
  getDeploymentYaml(
    clientId: string,
    deploymentId: string,
    digest: string,
  ): Promise<Buffer | undefined>;
  /** The bundle with `digest` if the client's current or previous manifest references it. */
  getBundle(clientId: string, digest: string): Promise<Buffer | undefined>;
  /** Current manifests of every client (for warming caches at start). */
  listManifests(): Promise<ManifestRecord[]>;
  getDeployment(deploymentId: string): Promise<DeploymentRecord | undefined>;
  listDeployments(query?: DeploymentQuery): Promise<DeploymentRecord[]>;

  /**
   * Keep the latest report per (client, deployment) and, in the same transaction, append it to
   * the history; `created` on the first.
   */
  putStatus(status: StatusRecord): Promise<{ created: boolean }>;
  listStatuses(filter?: StatusFilterRecord): Promise<StatusRecord[]>;

  /**
   * Forget applications, devices and statuses with their history (conformance reset); clients and
   * versions stay.
   */
  resetData(): Promise<void>;
  /**
   * The whole conformance reset as one transaction: commit `changeFor(clientId)` for every client
   * with live deployments (it must delete them; the version still advances, never goes back),
   * then forget what resetData forgets plus the previous manifests' revisions and bundles.
   * Returns the manifests it committed, for the caller's cache. A crash leaves all or nothing.
   */
  resetAll(changeFor: (clientId: string) => DesiredStateChange): Promise<ManifestRecord[]>;
  close(): Promise<void>;
}
