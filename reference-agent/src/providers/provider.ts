/**
 * The one extension point for deployment types (architecture: one `Provider` for Compose and
 * Helm). The reconciler knows nothing about Docker or Kubernetes: it hands a provider one
 * component at a time, in the listed order, and reads back what really runs.
 */

/** Where a component lives; the provider derives project/release names and labels from it. */
export interface ComponentRef {
  deploymentId: string;
  /** ApplicationDeployment metadata.name (K8s object name; Compose project prefix). */
  deploymentName: string;
  /** ApplicationDeployment metadata.namespace (K8s namespace; a label for Compose). */
  namespace: string;
  componentName: string;
}

/** Everything needed to install one component of one deployment revision. */
export interface ComponentSpec extends ComponentRef {
  /** `oci://host[:port]/path` as in the ApplicationDeployment. */
  repository: string;
  /** OCI tag (SemVer with `+` written `_`). */
  revision: string;
  /** Item 72-73: with wait, success only when everything runs (and is healthy if checked). */
  wait: boolean;
  /** From `timeout` ("5m0s"); exceeding it fails the component. */
  timeoutMs: number;
  /**
   * Parameter values for this component by target pointer: Compose environment variable names,
   * Helm `--set` dot paths. Already stringified the way the provider's tool expects.
   */
  parameters: Record<string, string>;
  /** Environment every workload container gets (the OTel variables of item 89). */
  injectedEnv: Record<string, string>;
  /**
   * Stable hash of everything above that should make a running component be re-applied; stored
   * on the workload (label/annotation) so drift checks can tell "old config" from "ours".
   */
  specHash: string;
}

/** What `apply` ended in. `failed` carries the error reported to the WFM (item 70). */
export type ApplyOutcome = { state: "installed" } | { state: "failed"; error: ProviderFailure };

/** What `remove` ended in. */
export type RemoveOutcome = { state: "removed" } | { state: "failed"; error: ProviderFailure };

/** Error code and message for the status `error` (code is implementation-specific, digest 7). */
export interface ProviderFailure {
  code: ProviderErrorCode;
  message: string;
}

export type ProviderErrorCode =
  | "PULL_FAILED"
  | "DIGEST_MISMATCH"
  | "ARTIFACT_REJECTED"
  | "APPLY_FAILED"
  | "TIMEOUT"
  | "WORKLOAD_EXITED"
  | "REMOVE_FAILED"
  | "RUNTIME_UNAVAILABLE";

/** The real state of one component as the runtime reports it. */
export interface ObservedComponent {
  /**
   * running: every workload of the component runs (and is healthy where checked) with `specHash`;
   * starting: being created or health pending; degraded: something exited, was removed or runs an
   * old spec (drift to repair); absent: nothing of it exists.
   */
  health: "running" | "starting" | "degraded" | "absent";
  /** Human-readable evidence (container names and states), shown by `margo-agent status`. */
  detail: string;
  /** The specHash found on the workloads, if they agree on one. */
  specHash?: string;
}

/** What `probe` found: is the runtime here, and why not. */
export interface ProviderProbe {
  available: boolean;
  /** Why it is not available (printed by tests that skip, shown in `status`). */
  reason?: string;
  /** e.g. "docker 20.10.24, compose 2.26.1". */
  version?: string;
}

/** One Provider per deployment type; the reconciler picks it by the profile `type`. */
export interface Provider {
  readonly type: "compose" | "helm";
  /** Is the runtime reachable now? Also drives capabilities' supportedDeploymentTypes (item 30). */
  probe(): Promise<ProviderProbe>;
  /**
   * Install or update the component and wait per `wait`/`timeoutMs`. Pulls from the OCI registry,
   * verifies the digest, validates the artifact with the foundation's rules before use (item 74),
   * applies. Idempotent: applying the same spec twice leaves one set of workloads. Never throws for
   * workload failures (returns `failed`); throws only when aborted through `signal`.
   */
  apply(spec: ComponentSpec, signal: AbortSignal): Promise<ApplyOutcome>;
  /** Read the real state through the runtime API (Docker API / Kubernetes API), not the CLI. */
  observe(ref: ComponentRef): Promise<ObservedComponent>;
  /** Tear the component down; succeeds when nothing of it is left (also when nothing was there). */
  remove(ref: ComponentRef, signal: AbortSignal): Promise<RemoveOutcome>;
  /** Every component this provider finds installed by this agent (labels), for orphans and reset. */
  listInstalled(): Promise<ComponentRef[]>;
}
