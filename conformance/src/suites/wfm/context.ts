/**
 * What the WFM suite's checks are given. The harness plays devices (WFM Clients) on the spec's
 * wire with real mTLS and drives the WFM's northbound side through a WfmDriver (gRPC or shell
 * commands). Nothing here imports the reference WFM.
 */
import type { DeploymentStatusManifest, DeviceCapabilitiesManifest } from "@margo/proto";
import type { CheckTools, ImplementationInfo } from "../../core/types.js";

export interface WfmCtx {
  readonly info: ImplementationInfo;
  readonly driver: WfmDriver;
  /** Admitted clients (at least two: isolation checks need a second scope). */
  readonly clients: readonly [WfmClient, WfmClient, ...WfmClient[]];
  /** Open a wire client with any credentials (null = no client certificate) for negative identity checks. */
  connect(creds: Credentials | null, actor: string): WireClient;
  /** Mints in the WFM's own trust domain; undefined when no CA was configured (those checks skip). */
  readonly domainMinter?: Minter;
  /** Mints under a CA the WFM has never seen (foreign trust domain / untrusted anchors). */
  readonly foreignMinter: Minter;
  /** Retire an admitted client (configured command); undefined when not configured. */
  retire?(clientId: string): Promise<void>;
  /** Application packages the harness pushed and published through the driver (lazily, once). */
  apps(t: CheckTools): Promise<PublishedApps>;
  readonly trustDomain: string;
  readonly wfmId: string;
}

export interface Credentials {
  /** Leaf first, then intermediates. */
  chainPem: string;
  keyPem: string;
}

export interface WfmClient {
  readonly clientId: string;
  readonly credentials: Credentials;
  readonly wire: WireClient;
  /**
   * The first state manifest response read for this client, when the harness admitted it in
   * this run and read its manifest before any check ran. Item 42's "the first manifest is 1" can
   * only be judged on that response; without it (pre-provisioned clients) the check skips.
   */
  readonly firstManifest?: WireResponse;
}

/** One exact request on the Management Interface; every call is recorded as evidence on t. */
export interface WireClient {
  readonly actor: string;
  request(t: CheckTools, req: WireRequest): Promise<WireResponse>;
  close(): void;
}

export interface WireRequest {
  method: string;
  /** Path under the WFM base URL, e.g. /api/v1/deployments. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** TLS options for transport checks (e.g. maxVersion "TLSv1.2", ciphers). */
  tls?: { minVersion?: string; maxVersion?: string; ciphers?: string };
  /** Use a fresh connection (default: keep-alive per client). */
  fresh?: boolean;
}

export interface WireResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | string[]>;
  /** Exact bytes as received (Content-Encoding NOT decoded). */
  body: Buffer;
  httpVersion: string;
  tls: { protocol: string | null; cipher: string | null; peerChainDer: Buffer[] };
}

/**
 * The WFM's northbound side, as the suite needs it (WfmDriverService or shell commands). Errors
 * from the WFM refusing a request are WfmDriverRefused (a finding the check may expect); anything
 * else thrown is an environment error.
 */
export interface WfmDriver {
  info(): Promise<{
    vendor: string;
    product: string;
    version: string;
    margoVersion: string;
    features: string[];
  }>;
  reset(): Promise<void>;
  publish(
    ociReference: string,
    plainHttp: boolean,
  ): Promise<{ applicationId: string; version: string; vendorReference?: string }>;
  deploy(req: {
    applicationId: string;
    version?: string;
    profileType?: string;
    profileId?: string;
    clientId: string;
    deviceId: string;
    parameters?: Record<string, unknown>;
    vendorReference?: string;
  }): Promise<{ deploymentId: string }>;
  update(deploymentId: string, parameters: Record<string, unknown>): Promise<void>;
  undeploy(deploymentId: string): Promise<void>;
  statuses(req: {
    clientId?: string;
    deploymentId?: string;
    includeHistory?: boolean;
  }): Promise<Array<{ clientId: string; status: DeploymentStatusManifest; receivedAt?: Date }>>;
  capabilities(
    clientId: string,
    deviceId: string,
  ): Promise<{ found: boolean; capabilities?: DeviceCapabilitiesManifest }>;
}

/**
 * The WFM refused a driver request (invalid parameters etc.): the check decides what that means.
 * `code` says how (a gRPC status name such as INVALID_ARGUMENT or NOT_FOUND; "refused" for the
 * shell driver's dedicated exit code), so a check expecting a refusal for one reason does not
 * take "not found" or "not implemented" for it.
 */
export class WfmDriverRefused extends Error {
  override readonly name = "WfmDriverRefused";
  constructor(
    message: string,
    readonly code = "refused",
  ) {
    super(message);
  }
}

/**
 * The driver cannot perform this operation at all (gRPC UNIMPLEMENTED, or no shell command
 * configured for it): a check needing it skips; it says nothing about the WFM's wire behaviour.
 */
export class WfmDriverUnsupported extends Error {
  override readonly name = "WfmDriverUnsupported";
}

/**
 * Whether `err` is a refusal for a reason the check expects: the shell driver's unspecific
 * "refused", or one of `codes` (gRPC status names). NOT_FOUND / FAILED_PRECONDITION are only a
 * refusal where the check names them.
 */
export function isRefusalFor(err: unknown, codes: readonly string[]): err is WfmDriverRefused {
  return err instanceof WfmDriverRefused && (err.code === "refused" || codes.includes(err.code));
}

/** Certificate minting for negative identity checks. */
export interface Minter {
  readonly trustDomain: string;
  /** A client SVID with this SPIFFE ID (any path), optionally broken in one named way. */
  clientSvid(
    spiffeId: string,
    flaw?:
      | "expired"
      | "not-yet-valid"
      | "ca-true"
      | "key-cert-sign"
      | "two-uris"
      | "no-uri"
      | "rsa-2048",
  ): Promise<Credentials>;
}

/** Fixture packages the harness pushed to its registry and published through the driver. */
export interface PublishedApps {
  /** compose-single: one component. */
  single: {
    applicationId: string;
    version: string;
    ociReference: string;
    vendorReference?: string;
  };
  /** compose-multi: three components, parameters with a schema. */
  multi: { applicationId: string; version: string; ociReference: string; vendorReference?: string };
}
