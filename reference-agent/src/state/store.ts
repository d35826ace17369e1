/**
 * The agent's durable state: what it accepted from the WFM, what it did about it, and the status
 * reports it still owes. Every method is synchronous and durable when it returns (SQLite, WAL,
 * synchronous=FULL), so a crash right after a call loses nothing the call reported as done.
 */

/** Wire values of `status.state` (item 67). */
export type WireState = "pending" | "installing" | "installed" | "failed" | "removing" | "removed";

/** Last accepted manifest (items 51, 54): the rollback floor and the If-None-Match value. */
export interface SyncRecord {
  manifestVersion?: bigint;
  etag?: string;
  /** Exact body of that manifest, for `margo-agent status`. */
  manifestBody?: Uint8Array;
  acceptedAt?: number;
}

/** Status `error` (item 70): source is the deployment name, component name or device id. */
export interface StatusErrorRecord {
  code: string;
  source: string;
  message: string;
}

export interface ComponentRecord {
  name: string;
  state: WireState;
  error?: StatusErrorRecord;
  /** specHash last applied successfully (see ComponentSpec.specHash). */
  appliedSpecHash?: string;
}

/**
 * Where one deployment stands. `desired` is the WFM's intent (present while in the manifest,
 * absent once it left it); `state` and `components` are what the agent last reported (or will).
 */
export interface DeploymentRecord {
  deploymentId: string;
  /** Digest of the desired ApplicationDeployment YAML revision. */
  digest: string;
  /** Its exact bytes (digest-verified before they were stored). */
  yaml: Uint8Array;
  /** manifestVersion of the manifest that brought this revision (or its removal) (digest 7). */
  adoptedManifestVersion: bigint;
  desired: "present" | "absent";
  state: WireState;
  error?: StatusErrorRecord;
  components: ComponentRecord[];
  /** Digest of the revision whose components were last all installed. */
  appliedDigest?: string;
  updatedAt: number;
}

/** A deployment revision in an accepted manifest. */
export interface AcceptedDeployment {
  deploymentId: string;
  digest: string;
  yaml: Uint8Array;
}

/** An accepted manifest, applied to the store in one transaction. */
export interface AcceptedManifest {
  manifestVersion: bigint;
  etag: string;
  body: Uint8Array;
  deployments: AcceptedDeployment[];
}

/** One status report waiting in the outbox; `seq` gives the delivery order. */
export interface OutboxEntry {
  seq: number;
  deploymentId: string;
  /** Exact JSON body to POST to /api/v1/deployments/{deploymentId}/status. */
  body: Uint8Array;
  enqueuedAt: number;
  attempts: number;
  lastError?: string;
}

export interface OutboxStats {
  pending: number;
  delivered: number;
  /** Refused by the WFM with a non-retryable answer (4xx); kept with the reason, never resent. */
  deadLettered: number;
}

/** A rejection or failure the agent recorded (DeviceDriver LastError, `margo-agent status`). */
export interface ErrorRecord {
  at: number;
  /** e.g. manifest-version-regressed, digest-mismatch, unsupported-digest-algorithm, wfm-identity-mismatch, trust-bundle-empty. */
  kind: string;
  message: string;
}

/** The trust bundle in use (items 21-23), kept for offline restarts. */
export interface TrustRecord {
  /** SPIFFE bundle JSON exactly as accepted (or built from the provisioned PEM). */
  bundleJson: Uint8Array;
  sequence?: bigint;
  refreshHintSeconds?: number;
  etag?: string;
  acceptedAt: number;
}

export interface AgentStore {
  readSync(): SyncRecord;
  /**
   * Atomically: set manifestVersion+ETag, upsert every listed deployment (a changed digest sets
   * the new yaml and adoptedManifestVersion), mark deployments no longer listed `desired: absent`
   * (adoptedManifestVersion = this version). Throws StoreConflictError if manifestVersion is not
   * above the stored one: the check lives inside the write so no race can regress it.
   */
  acceptManifest(m: AcceptedManifest): void;
  listDeployments(): DeploymentRecord[];
  getDeployment(deploymentId: string): DeploymentRecord | undefined;
  /**
   * Persist a deployment's new state and, in the same transaction, enqueue `report` (the status
   * body) if given: a state change and its report are never separated by a crash. Returns the
   * outbox seq when one was enqueued.
   */
  saveDeployment(rec: DeploymentRecord, report?: Uint8Array): number | undefined;
  /** Drop a deployment that left the manifest and whose removal was reported. */
  forgetDeployment(deploymentId: string): void;

  /** Oldest undelivered entries first. */
  outboxPending(limit: number): OutboxEntry[];
  outboxDelivered(seq: number): void;
  outboxFailed(seq: number, error: string): void;
  outboxDeadLetter(seq: number, reason: string): void;
  outboxStats(): OutboxStats;

  recordError(kind: string, message: string): void;
  recentErrors(limit: number): ErrorRecord[];

  readTrust(): TrustRecord | undefined;
  saveTrust(t: TrustRecord): void;

  /** sha256 of the capabilities body last accepted by the WFM, per device id (item 25). */
  readCapabilitiesDigest(deviceId: string): string | undefined;
  saveCapabilitiesDigest(deviceId: string, digest: string | undefined): void;

  /** Forget everything (DeviceDriver Reset): manifest floor, deployments, outbox, errors, trust. */
  reset(): void;
  close(): void;
}

/** acceptManifest refused: the version is not above the stored floor (item 51). */
export class StoreConflictError extends Error {
  constructor(
    readonly stored: bigint,
    readonly offered: bigint,
  ) {
    super(`manifestVersion ${offered} is not above the stored ${stored}`);
    this.name = "StoreConflictError";
  }
}
