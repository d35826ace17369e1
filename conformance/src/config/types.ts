/**
 * The harness configuration: one YAML file, every key overridable by an environment variable
 * (`MARGO_CONFORMANCE_` + the key path in UPPER_SNAKE, e.g. `wfm.url` -> `MARGO_CONFORMANCE_WFM_URL`,
 * `device.composeHost.enabled` -> `MARGO_CONFORMANCE_DEVICE_COMPOSE_HOST_ENABLED`; lists as JSON or
 * comma-separated). Relative paths are relative to the config file's folder. Command templates
 * substitute `{name}` placeholders named where they are used.
 */
import type { SuiteName } from "../core/types.js";

export interface ConformanceConfig {
  /** Which suites run (default: those whose section is configured). */
  suites: SuiteName[];
  output: {
    /** Report folder (default ./conformance-report). */
    dir: string;
    /** Default all three. */
    formats: Array<"json" | "junit" | "html">;
  };
  select: {
    /** Check id prefixes to run (empty = all). */
    include: string[];
    /** Check id prefixes to leave out. */
    exclude: string[];
    /** Run only checks that need one of these features (empty = no filter). */
    features: string[];
    /** Profile parts: core (MUST), extended (SHOULD/MAY). Default both. */
    parts: Array<"core" | "extended">;
  };
  /** Check ids the vendor knows fail: still run and reported, but they do not count as new failures. */
  knownFailing: string[];
  /** Default per-check timeout (ms); a check may ask for more. */
  checkTimeoutMs: number;
  /** Run the selected suites at the same time (they judge different implementations). Default true. */
  parallelSuites: boolean;
  /**
   * Keep the run's work folder (device logs, identities) instead of removing it, and print its
   * path: a device that crashed can only be diagnosed from its logs. Default false.
   */
  keepWorkDir?: boolean;
  /** The OCI registry the harness publishes its test packages to (plain HTTP on loopback). */
  registry: { address: string; plainHttp: boolean };
  wfm?: WfmSuiteConfig;
  device?: DeviceSuiteConfig;
  package?: PackageSuiteConfig;
}

export interface WfmSuiteConfig {
  /** Management Interface base URL, e.g. https://127.0.0.1:9443 (everything before /api/v1). */
  url: string;
  /** spiffe://<td>/margo/wfm/<wfm-id> the WFM must present. */
  spiffeId: string;
  /** PEM trust anchors of the WFM's trust domain (or a SPIFFE bundle JSON file). */
  trustBundleFile: string;
  /** Optional SPIFFE bundle endpoint to check (item 17), e.g. https://127.0.0.1:8443/.well-known/spiffe/bundle.json. */
  bundleUrl?: string;
  /** Optional discovery endpoint (item 17). */
  discoveryUrl?: string;
  clients: {
    /**
     * Shell command admitting one WFM client and writing its credentials into `{dir}`:
     * svid.pem (leaf + intermediates), svid.key; placeholders {clientId}, {dir}.
     */
    provisionCommand?: string;
    /** Shell command retiring a client (its SVID must then be refused); placeholder {clientId}. */
    retireCommand?: string;
    /** Pre-provisioned credential folders instead of provisionCommand (at least two for isolation checks). */
    dirs?: string[];
  };
  /** CA of the WFM's trust domain (cert + key PEM files): lets the harness mint in-domain negative identities. */
  ca?: { certFile: string; keyFile: string };
  driver: WfmDriverConfig;
}

export type WfmDriverConfig =
  | {
      kind: "grpc";
      /** host:port of WfmDriverService (TLS with client certificate). */
      address: string;
      certFile: string;
      keyFile: string;
      /** PEM anchors to verify the driver server. */
      caFile: string;
      /** SPIFFE ID the driver server must present (default: the WFM's spiffeId). */
      serverSpiffeId?: string;
    }
  | {
      kind: "shell";
      /**
       * One command per operation; each prints JSON on stdout (proto3 JSON of the matching
       * WfmDriver response). Placeholders: {ociReference}, {plainHttp}, {applicationId},
       * {version}, {profileType}, {clientId}, {deviceId}, {deploymentId}, {parametersJson},
       * {parametersFile} (a JSON file), {includeHistory}.
       */
      commands: {
        info: string;
        reset: string;
        publish: string;
        deploy: string;
        update: string;
        undeploy: string;
        statuses: string;
        capabilities: string;
      };
      /** Working directory and extra environment of every command. */
      cwd?: string;
      env?: Record<string, string>;
    };

export interface DeviceSuiteConfig {
  /**
   * How the harness starts the device under test once the fresh Compose host is up. The command
   * gets MARGO_CONFORMANCE_DOCKER_HOST (unix:///... of the Compose host), MARGO_CONFORMANCE_WORKDIR
   * and MARGO_CONFORMANCE_KUBECONFIG (when a kind cluster exists), and must print, as a line on
   * stdout, one JSON object with `driverAddress` ("host:port") or `driverPort` (loopback).
   * Leave it out to use an already running device (`driver.address`).
   */
  launch?: { command: string; cwd?: string; env?: Record<string, string>; readyTimeoutMs: number };
  driver: {
    /** host:port of DeviceDriverService (plaintext on loopback), when not launched. */
    address?: string;
    /** Bearer token, or a file holding it ({workdir} placeholder allowed). */
    token?: string;
    tokenFile?: string;
  };
  composeHost: {
    /** Spin up a fresh Docker Engine in its own network namespace for the run (default true). */
    enabled: boolean;
    /** Images copied from the source engine into the fresh one (it cannot pull). */
    preloadImages: string[];
    /** Engine the preload images come from (default unix:///var/run/docker.sock). */
    sourceDockerHost: string;
    /** Third octet base for the veth /30s under 10.203.0.0/16 (each host takes one). */
    subnetIndex?: number;
    /** An existing engine to observe instead of a fresh one (when enabled is false). */
    dockerHost?: string;
  };
  /** Create a kind cluster for Helm devices when `kind` is on PATH (else Helm checks skip). */
  helm: { enabled: boolean };
  /** Poll period the device is configured with (ms). */
  pollPeriodMs: number;
  /** Trust domain and WFM id of the harness's instrumented WFM. */
  trustDomain: string;
  wfmId: string;
}

export interface PackageSuiteConfig {
  /** Package folders, .tar.gz archives or OCI references (`registry/repo:tag`). */
  sources: string[];
}
