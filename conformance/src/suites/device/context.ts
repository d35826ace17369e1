/**
 * What the device suite's checks are given. The harness plays the WFM on the spec's wire (an
 * instrumented WFM it runs itself, with fault injection), drives the device through
 * DeviceDriverService, and judges the real containers through the Compose host's Engine API.
 * Nothing here imports the reference agent: a bug shared by both would otherwise pass unseen.
 */
import type { CheckTools, ImplementationInfo } from "../../core/types.js";

export interface DeviceCtx {
  readonly wfm: InstrumentedWfm;
  readonly device: DeviceUnderTest;
  /** The fresh Compose host's engine; undefined when the device is not a Compose device. */
  readonly engine?: ObservedEngine;
  /** Components the harness pushed to its registry for these checks. */
  readonly components: TestComponents;
  readonly info: ImplementationInfo;
}

/** One deployment the instrumented WFM serves; the harness writes the YAML (exact bytes served). */
export interface ServedDeployment {
  deploymentId: string;
  /** ApplicationDeployment YAML as served; its sha256 is the honest digest. */
  yaml: string;
}

/** A way to lie or misbehave, switched on until cleared (`times` limits it to N answers). */
export type Fault =
  /** Serve the next manifests with this manifestVersion instead of the next higher one. */
  | { kind: "manifest-version"; version: bigint }
  /** The manifest's digest for this deployment is not the sha256 of the bytes served. */
  | { kind: "deployment-digest-mismatch"; deploymentId: string }
  /** The manifest's bundle digest is not the sha256 of the archive served. */
  | { kind: "bundle-digest-mismatch" }
  /** Digests written with another algorithm prefix (e.g. sha512:<128 hex>), honest otherwise. */
  | { kind: "digest-algorithm"; algorithm: "sha512" | "md5" }
  /** sizeBytes wrong (digests right): the device must still accept (item 58). */
  | { kind: "size-bytes-wrong" }
  /** Answer requests whose path matches with this status + Retry-After (problem+json, retryable). */
  | {
      kind: "http-status";
      pathPrefix: string;
      method?: string;
      status: 429 | 503;
      retryAfterSeconds: number;
      times?: number;
    }
  /** Answer the YAML/bundle URL of this deployment with 404 (not a deletion, item 55). */
  | { kind: "artifact-404"; deploymentId?: string };

/** The TLS identity the instrumented WFM presents (item 8, 9, 10, 18). */
export type ServerIdentity =
  | "good"
  /** Valid chain of the right trust domain, but spiffe://<td>/margo/wfm/<other-id>. */
  | "wrong-wfm-id"
  /** Right SPIFFE ID, issued by a CA the device does not trust. */
  | "untrusted-ca"
  /** Right SPIFFE ID and CA, notAfter in the past. */
  | "expired"
  /** Right SPIFFE ID and CA, but the leaf is a CA (cA=true). */
  | "ca-leaf";

/** A request the device made, as the instrumented WFM saw it. */
export interface RecordedRequest {
  seq: number;
  at: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Status the instrumented WFM answered. */
  status: number;
  /** Negotiated TLS version and the client chain length, for transport checks. */
  tlsProtocol: string | null;
  clientChainLength: number;
  /**
   * Key of the leaf each side presented on this connection, e.g. `ec P-256` or `rsa 3072`
   * (item 11: SVIDs are ECDSA P-256); absent when that side presented none.
   */
  tlsKeys?: { client?: string; server?: string };
  /**
   * The client id from the peer's SVID (`.../client/<id>`), when it presented one. Lets a check
   * tell the freshly configured client from a previous relationship still polling.
   */
  clientId?: string;
}

export interface ReceivedStatus {
  seq: number;
  at: number;
  deploymentId: string;
  /** Parsed JSON body as the device sent it. */
  body: Record<string, unknown>;
  raw: Buffer;
}

export interface InstrumentedWfm {
  /** https://127.0.0.1:<port> (Management Interface). */
  readonly url: string;
  /** https URL of the SPIFFE bundle endpoint it serves (give it to Configure). */
  readonly bundleUrl: string;
  readonly trustDomain: string;
  /** spiffe://<td>/margo/wfm/<wfm-id> */
  readonly spiffeId: string;
  /** Credentials for the device (client SVID chain via an intermediate, key, anchors). */
  clientCredentials(): {
    chainPem: string;
    keyPem: string;
    anchorsPem: string;
    bundleJson: string;
    clientId: string;
  };
  /**
   * Serve these deployments from now on: a new manifestVersion (previous + 1 unless a fault
   * says otherwise), per-deployment URLs and a bundle (bundle: null when empty). Returns what
   * the manifest says.
   */
  publish(deployments: ServedDeployment[]): PublishedManifest;
  /** Manifest-shaping faults (versions, digests, sizeBytes) apply from the next publish(). */
  inject(fault: Fault): void;
  clearFaults(): void;
  /**
   * Present this identity on new connections (open ones are cut). `maxTlsVersion` caps what the
   * server offers (TLSv1.1 shows whether the device refuses old TLS, item 2); a later call
   * without it restores the default (TLS 1.2-1.3).
   */
  presentIdentity(
    kind: ServerIdentity,
    opts?: { maxTlsVersion?: "TLSv1.1" | "TLSv1.2" | "TLSv1.3" },
  ): Promise<void>;
  /**
   * DER of a root: "trusted" is the anchor the device is provisioned with, "untrusted" the root
   * of the `untrusted-ca` identity (a rotation target: serve it in a bundle, items 21-22).
   */
  trustAnchorDer(which: "trusted" | "untrusted"): Buffer;
  /**
   * Connection attempts that carried no request, oldest first: TLS handshakes that failed (the
   * device refused us or we refused it) and handshakes the client completed but then closed
   * without a request (a client that checks the SPIFFE ID after the handshake). Connections the
   * WFM cut itself (presentIdentity, reset) are not counted.
   */
  tlsFailures(): Array<{ at: number; server: "management" | "bundle"; message: string }>;
  /**
   * Serve this SPIFFE bundle document at bundleUrl (default: the true anchors, sequence 1). It is
   * always served with a strong ETag (304 on If-None-Match); `cacheControl` (default no-store) lets
   * a check offer a long max-age that must not defer a due refresh (item 23).
   */
  serveBundle(doc: string, opts?: { cacheControl?: string }): void;
  requests(): RecordedRequest[];
  statuses(): ReceivedStatus[];
  /** Parsed capabilities bodies in receipt order. */
  capabilities(): Array<{
    seq: number;
    at: number;
    deviceId: string;
    body: Record<string, unknown>;
  }>;
  /** Resolve when pred holds on the recorded requests (polls every 25 ms); fail via t on timeout. */
  waitFor<T>(
    t: CheckTools,
    what: string,
    pred: () => T | undefined | false,
    timeoutMs: number,
  ): Promise<T>;
  /** Forget recorded traffic and faults, serve an empty manifest at a fresh client scope. */
  reset(): Promise<void>;
}

export interface PublishedManifest {
  manifestVersion: bigint;
  body: Buffer;
  etag: string;
  deployments: Array<{ deploymentId: string; digest: string; url: string }>;
  bundle: { digest: string; url: string } | null;
}

export interface DeviceUnderTest {
  /**
   * The device id the last configure() provisioned (ConfigureRequest.device_id), fresh per
   * configure: checks name it in `metadata.deviceId` and expect capabilities under it (item 25).
   */
  readonly deviceId: string;
  /** Configure it against the instrumented WFM (fresh identity), then wait for its first request. */
  configure(
    t: CheckTools,
    opts?: { pollPeriodMs?: number; withBundleUrl?: boolean },
  ): Promise<void>;
  reset(t: CheckTools): Promise<void>;
  getState(t: CheckTools): Promise<DeviceStateView>;
  /** Stop and start the device process (only when the harness launched it); else skip. */
  restart?(t: CheckTools): Promise<void>;
}

export interface DeviceStateView {
  manifestVersion?: bigint;
  etag?: string;
  deployments: Array<{ deploymentId: string; digest: string; state?: string }>;
  lastErrors: Array<{ kind: string; message: string; at?: string }>;
}

/** The Compose host's Docker Engine, read-only from the checks' side. */
export interface ObservedEngine {
  readonly dockerHost: string;
  /** Containers (all states) with their labels, state, exit code, env and start time. */
  containers(t: CheckTools): Promise<EngineContainer[]>;
  /** Remove a container behind the device's back (drift). */
  removeContainer(t: CheckTools, id: string): Promise<void>;
}

export interface EngineContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  exitCode: number;
  startedAt: string;
  labels: Record<string, string>;
  env: string[];
}

/** OCI references (in the harness's registry) of the Compose components the checks deploy. */
export interface TestComponents {
  /** One busybox service that stays running. */
  running: ComponentRef;
  /** A service that exits 1 at once (item 73). */
  exitsNonZero: ComponentRef;
  /** A service that never becomes ready within a short timeout (item 72). */
  neverReady: ComponentRef;
  /** An archive with a `../` entry (digest right, content invalid, item 74). */
  unsafeArchive: ComponentRef;
}

export interface ComponentRef {
  /** registry/repository (ApplicationDeployment `properties.repository`). */
  repository: string;
  /** revision = tag. */
  revision: string;
}
