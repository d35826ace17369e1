import type { admin } from "@margo/proto";

/**
 * The contract between the WFM's core and its edges (REST, gRPC, CLI). Southbound calls take the
 * caller's wfm-client-id, which the edge derived from the verified client SVID and nothing else
 * (checklist item 4); every lookup is scoped to it (item 5). All failures are WfmError.
 */

/** One client's current State Manifest, exactly as served. */
export interface ManifestSnapshot {
  clientId: string;
  manifestVersion: bigint;
  /** The exact JSON bytes (RFC 8785 order) served as the 200 body. */
  body: Buffer;
  /** `"sha256:<hex>"` of `body`, with the quotes, ready for the ETag header. */
  etag: string;
}

/** What a device-facing edge may do on behalf of an authenticated client. */
export interface Southbound {
  /**
   * Accepted-client policy, checked per request (digest 5.3-5.4). Synchronous and cheap: the
   * edges call it on every request, so it must not touch the store.
   */
  isAccepted(clientId: string): boolean;
  /** PUT /api/v1/capabilities/{deviceId}; `body` is the raw request body. */
  putCapabilities(
    clientId: string,
    deviceId: string,
    body: Uint8Array,
  ): Promise<{ created: boolean }>;
  /** DELETE /api/v1/capabilities/{deviceId}. */
  deleteCapabilities(clientId: string, deviceId: string): Promise<void>;
  /** GET /api/v1/deployments: the current manifest (version 1, empty, for a new client). */
  manifest(clientId: string): Promise<ManifestSnapshot>;
  /** GET /api/v1/deployments/{id}/{digest}: the YAML bytes whose sha256 is `digest`. */
  deploymentYaml(clientId: string, deploymentId: string, digest: string): Promise<Buffer>;
  /** GET /api/v1/bundles/{digest}: the tar.gz bytes whose sha256 is `digest`. */
  bundle(clientId: string, digest: string): Promise<Buffer>;
  /** POST /api/v1/deployments/{id}/status; `body` is the raw request body. */
  reportStatus(
    clientId: string,
    deploymentId: string,
    body: Uint8Array,
  ): Promise<{ created: boolean }>;
  /**
   * Calls `listener` with every new manifest of the client, synchronously after the change is
   * durable (WatchManifest must deliver within 100 ms). Returns the unsubscribe function.
   */
  watch(clientId: string, listener: (snapshot: ManifestSnapshot) => void): () => void;
}

/** Filters of list calls; an absent field matches everything. */
export interface DeploymentFilter {
  clientId?: string;
  deviceId?: string;
}
export interface StatusFilter {
  clientId?: string;
  deploymentId?: string;
  /** Every accepted report in receipt order instead of the latest per deployment. */
  includeHistory?: boolean;
}

/** Parameter overrides as plain JSON values (from protobuf Value or CLI input). */
export type ParameterValues = Record<string, unknown>;

export interface CreateDeploymentInput {
  applicationId: string;
  version?: string;
  /** Exactly one of profileId / profileType; with neither, the description's first profile. */
  profileId?: string;
  profileType?: string;
  clientId: string;
  deviceId: string;
  parameters?: ParameterValues;
}

/** The operator's side: what the admin gRPC service, the WfmDriver service and the CLI call. */
export interface Northbound {
  /** Admit a client and mint its first SVID. `conflict` if already admitted. */
  addClient(clientId: string, displayName?: string): Promise<admin.AddClientResponse>;
  /** Retire a client: its SVID stays valid but every request gets 403 #not-authorized. */
  removeClient(clientId: string): Promise<void>;
  listClients(): Promise<admin.Client[]>;
  issueClientCredentials(
    clientId: string,
    lifetimeSeconds?: number,
  ): Promise<admin.ClientCredentials>;
  /**
   * Mint operator credentials (spiffe://<td>/operator/<name>) from the issuing root, so an operator
   * can renew its own SVID after a CA activation instead of being locked out when the root that
   * issued it retires. `semantic-error` for a name that is not one SPIFFE path segment.
   */
  issueOperatorCredentials(
    name: string,
    lifetimeSeconds?: number,
  ): Promise<admin.ClientCredentials>;
  /** Pull, verify and validate an Application Package; idempotent for the same manifest digest. */
  registerApplication(ociReference: string, plainHttp: boolean): Promise<admin.Application>;
  listApplications(): Promise<admin.Application[]>;
  /** Newest version when `version` is absent; `not-found` otherwise. */
  getApplication(applicationId: string, version?: string): Promise<admin.Application>;
  /** Validates parameters (item 63), builds the YAML, bumps the client's manifestVersion. */
  createDeployment(input: CreateDeploymentInput): Promise<admin.Deployment>;
  /** Same id, new digest; `semantic-error` if an immutable setting would change (item 63). */
  updateDeployment(deploymentId: string, parameters: ParameterValues): Promise<admin.Deployment>;
  /** Drops the deployment from the manifest (bumps the version); statuses stay readable. */
  deleteDeployment(deploymentId: string): Promise<void>;
  listDeployments(filter?: DeploymentFilter): Promise<admin.Deployment[]>;
  listDevices(clientId?: string): Promise<admin.Device[]>;
  /** `undefined` when the device never reported or was unregistered. */
  getDevice(clientId: string, deviceId: string): Promise<admin.Device | undefined>;
  /** Latest report per (client, deployment), or all of them in receipt order with includeHistory. */
  listStatuses(filter?: StatusFilter): Promise<admin.ReportedStatus[]>;
  /** CA rotation step 1 (digest 5.6): a new root joins the bundle; issuance unchanged. */
  publishNextAuthority(): Promise<admin.AuthorityStatus>;
  /**
   * Step 2: the published root issues, the WFM SVID is re-minted. `conflict` when nothing is
   * published or the bundle refresh interval has not passed since publishing (unless `force`).
   */
  activateNextAuthority(force?: boolean): Promise<admin.AuthorityStatus>;
  /** Step 3: drop anchors that neither issue nor wait for activation. */
  retirePreviousAuthorities(): Promise<admin.AuthorityStatus>;
  /** The bundle's anchors and where a rotation stands. */
  authorityStatus(): Promise<admin.AuthorityStatus>;
  /**
   * Conformance reset: forget applications, deployments, devices and statuses; clients stay.
   * manifestVersion never goes back: a client that had deployments gets a new, empty manifest.
   */
  reset(): Promise<void>;
}
