/**
 * Every configuration key, once: its type, default, environment variable and meaning. The loader,
 * the env overrides and the README's configuration table are all derived from this list, so the
 * documentation cannot drift from what the code accepts (a unit test compares the README).
 */
import type { SuiteName } from "../core/types.js";

export type KeyType =
  | "string"
  | "number"
  | "boolean"
  | "string[]"
  | "path"
  | "path[]"
  /** Package sources: a path when it names something on disk, else kept (an OCI reference). */
  | "source[]"
  | "enum"
  | "enum[]"
  | "record";

export interface ConfigKey {
  /** Dotted camelCase path in the YAML file. */
  path: string;
  type: KeyType;
  /** Allowed values for enum / enum[]. */
  values?: readonly string[];
  /** Default when neither file nor env sets it (only applied when the key's section is configured). */
  default?: unknown;
  /** How the README shows the default when it is computed (e.g. from another variable). */
  defaultText?: string;
  /** Required when its suite is selected ("kind=grpc" style conditions are checked by the loader). */
  required?: boolean;
  /** Only valid for this driver kind (wfm.driver.kind). */
  driverKind?: "grpc" | "shell";
  meaning: string;
}

const SHELL_OPS = [
  "info",
  "reset",
  "publish",
  "deploy",
  "update",
  "undeploy",
  "statuses",
  "capabilities",
] as const;

export const CONFIG_KEYS: readonly ConfigKey[] = [
  {
    path: "suites",
    type: "enum[]",
    values: ["wfm", "device", "package"],
    defaultText: "configured sections",
    meaning: "Suites to run; default: every suite whose section is configured.",
  },
  {
    path: "output.dir",
    type: "path",
    default: "conformance-report",
    meaning: "Folder the reports are written to (report.json, report.xml, report.html).",
  },
  {
    path: "output.formats",
    type: "enum[]",
    values: ["json", "junit", "html"],
    default: ["json", "junit", "html"],
    meaning: "Report formats to write.",
  },
  {
    path: "select.include",
    type: "string[]",
    default: [],
    meaning: "Check id prefixes to run (empty: all).",
  },
  {
    path: "select.exclude",
    type: "string[]",
    default: [],
    meaning: "Check id prefixes to leave out.",
  },
  {
    path: "select.features",
    type: "string[]",
    default: [],
    meaning: "Run only checks needing one of these optional features (empty: no filter).",
  },
  {
    path: "select.parts",
    type: "enum[]",
    values: ["core", "extended"],
    default: ["core", "extended"],
    meaning: "Profile parts: core (MUST checks), extended (SHOULD/MAY checks).",
  },
  {
    path: "knownFailing",
    type: "string[]",
    default: [],
    meaning:
      "Check ids known to fail: still run and reported, exit code 2 instead of 1 when only they fail.",
  },
  {
    path: "checkTimeoutMs",
    type: "number",
    default: 30000,
    meaning: "Default per-check timeout; a check past it is an error, not a fail.",
  },
  {
    path: "parallelSuites",
    type: "boolean",
    default: true,
    meaning: "Run the selected suites at the same time (they judge different implementations).",
  },
  {
    path: "keepWorkDir",
    type: "boolean",
    default: false,
    meaning:
      "Keep the run's work folder (device logs, identities) and print its path: a crashed device is otherwise undiagnosable.",
  },
  {
    path: "registry.address",
    type: "string",
    default: "127.0.0.1:5000",
    defaultText: "$MARGO_REGISTRY or 127.0.0.1:5000",
    meaning: "OCI registry the harness publishes its test packages to.",
  },
  {
    path: "registry.plainHttp",
    type: "boolean",
    default: true,
    meaning: "Talk plain HTTP to the registry (loopback registries).",
  },

  {
    path: "wfm.url",
    type: "string",
    required: true,
    meaning:
      "Management Interface base URL (everything before /api/v1), e.g. https://127.0.0.1:9443.",
  },
  {
    path: "wfm.spiffeId",
    type: "string",
    required: true,
    meaning: "SPIFFE ID the WFM must present: spiffe://<td>/margo/wfm/<wfm-id>.",
  },
  {
    path: "wfm.trustBundleFile",
    type: "path",
    required: true,
    meaning: "PEM trust anchors of the WFM's trust domain (or a SPIFFE bundle JSON file).",
  },
  {
    path: "wfm.bundleUrl",
    type: "string",
    meaning: "SPIFFE bundle endpoint to check (item 17); checks of it skip when unset.",
  },
  {
    path: "wfm.discoveryUrl",
    type: "string",
    meaning: "Discovery endpoint to check (item 17); checks of it skip when unset.",
  },
  {
    path: "wfm.clients.provisionCommand",
    type: "string",
    meaning:
      "Shell command admitting a client and writing svid.pem/svid.key into {dir}; placeholders {clientId}, {dir}.",
  },
  {
    path: "wfm.clients.retireCommand",
    type: "string",
    meaning:
      "Shell command retiring a client (its SVID must then be refused); placeholder {clientId}.",
  },
  {
    path: "wfm.clients.dirs",
    type: "path[]",
    meaning:
      "Pre-provisioned client credential folders instead of provisionCommand (two or more for isolation checks).",
  },
  {
    path: "wfm.ca.certFile",
    type: "path",
    meaning:
      "CA certificate of the WFM's trust domain: lets the harness mint in-domain negative identities.",
  },
  { path: "wfm.ca.keyFile", type: "path", meaning: "Private key of that CA." },
  {
    path: "wfm.driver.kind",
    type: "enum",
    values: ["grpc", "shell"],
    required: true,
    meaning:
      "How the harness drives the WFM's northbound side: WfmDriverService over gRPC, or shell commands.",
  },
  {
    path: "wfm.driver.address",
    type: "string",
    required: true,
    driverKind: "grpc",
    meaning: "host:port of WfmDriverService (TLS with client certificate).",
  },
  {
    path: "wfm.driver.certFile",
    type: "path",
    required: true,
    driverKind: "grpc",
    meaning: "Client certificate for the driver service.",
  },
  {
    path: "wfm.driver.keyFile",
    type: "path",
    required: true,
    driverKind: "grpc",
    meaning: "Client key for the driver service.",
  },
  {
    path: "wfm.driver.caFile",
    type: "path",
    required: true,
    driverKind: "grpc",
    meaning: "PEM anchors that verify the driver server.",
  },
  {
    path: "wfm.driver.serverSpiffeId",
    type: "string",
    driverKind: "grpc",
    defaultText: "wfm.spiffeId",
    meaning: "SPIFFE ID the driver server must present.",
  },
  ...SHELL_OPS.map(
    (op): ConfigKey => ({
      path: `wfm.driver.commands.${op}`,
      type: "string",
      required: true,
      driverKind: "shell",
      meaning: `Shell driver: command for ${op}; prints the proto3 JSON response on stdout.`,
    }),
  ),
  {
    path: "wfm.driver.cwd",
    type: "path",
    driverKind: "shell",
    meaning: "Shell driver: working directory of every command.",
  },
  {
    path: "wfm.driver.env",
    type: "record",
    driverKind: "shell",
    meaning: "Shell driver: extra environment of every command (JSON object or k=v,k=v).",
  },

  {
    path: "device.launch.command",
    type: "string",
    meaning:
      "Command starting the device under test once the Compose host is up; prints a JSON line with driverAddress or driverPort.",
  },
  { path: "device.launch.cwd", type: "path", meaning: "Working directory of the launch command." },
  {
    path: "device.launch.env",
    type: "record",
    meaning: "Extra environment of the launch command (JSON object or k=v,k=v).",
  },
  {
    path: "device.launch.readyTimeoutMs",
    type: "number",
    default: 30000,
    meaning: "How long the launch command may take to print its ready line.",
  },
  {
    path: "device.driver.address",
    type: "string",
    meaning: "host:port of an already running device's DeviceDriverService (when not launched).",
  },
  { path: "device.driver.token", type: "string", meaning: "Bearer token for DeviceDriverService." },
  {
    path: "device.driver.tokenFile",
    type: "path",
    meaning: "File holding the bearer token ({workdir} placeholder allowed).",
  },
  {
    path: "device.composeHost.enabled",
    type: "boolean",
    default: true,
    meaning: "Spin up a fresh Docker Engine in its own network namespace for the run.",
  },
  {
    path: "device.composeHost.preloadImages",
    type: "string[]",
    default: [],
    meaning: "Images copied from the source engine into the fresh one (it cannot pull).",
  },
  {
    path: "device.composeHost.sourceDockerHost",
    type: "string",
    default: "unix:///var/run/docker.sock",
    meaning: "Engine the preload images come from.",
  },
  {
    path: "device.composeHost.subnetIndex",
    type: "number",
    meaning:
      "Third octet for the Compose host's veth /30 under 10.203.0.0/16 (concurrent runs differ).",
  },
  {
    path: "device.composeHost.dockerHost",
    type: "string",
    meaning: "Existing engine to observe instead of a fresh one (when enabled is false).",
  },
  {
    path: "device.helm.enabled",
    type: "boolean",
    default: true,
    meaning: "Create a kind cluster for Helm devices when kind is on PATH (else Helm checks skip).",
  },
  {
    path: "device.pollPeriodMs",
    type: "number",
    default: 500,
    meaning: "Poll period the device is configured with.",
  },
  {
    path: "device.trustDomain",
    type: "string",
    default: "device.conformance.test",
    meaning: "Trust domain of the harness's instrumented WFM.",
  },
  {
    path: "device.wfmId",
    type: "string",
    default: "conformance-wfm",
    meaning: "WFM id of the harness's instrumented WFM.",
  },

  {
    path: "package.sources",
    type: "source[]",
    required: true,
    meaning: "Package folders, .tar.gz archives or OCI references (registry/repo:tag).",
  },
];

/** Top-level sections that belong to one suite (present = that suite is configured). */
export const SUITE_SECTIONS: readonly SuiteName[] = ["wfm", "device", "package"];

/** Environment variables the harness sets for child processes; never read as configuration. */
export const RESERVED_ENV = new Set([
  "MARGO_CONFORMANCE_DOCKER_HOST",
  "MARGO_CONFORMANCE_WORKDIR",
  "MARGO_CONFORMANCE_KUBECONFIG",
]);

export const ENV_PREFIX = "MARGO_CONFORMANCE_";

/** `device.composeHost.preloadImages` -> `MARGO_CONFORMANCE_DEVICE_COMPOSE_HOST_PRELOAD_IMAGES`. */
export function envVarName(path: string): string {
  return (
    ENV_PREFIX +
    path
      .split(".")
      .map((seg) => seg.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase())
      .join("_")
  );
}

function defaultCell(k: ConfigKey): string {
  if (k.defaultText !== undefined) return k.defaultText;
  if (k.default === undefined) return k.required ? "(required)" : "(unset)";
  if (Array.isArray(k.default)) return k.default.length === 0 ? "[]" : k.default.join(",");
  return String(k.default);
}

function typeCell(k: ConfigKey): string {
  if (k.type === "enum") return (k.values ?? []).join(" \\| ");
  if (k.type === "enum[]") return `list of ${(k.values ?? []).join(" \\| ")}`;
  if (k.type === "source[]") return "list of paths or OCI refs";
  if (k.type === "path[]") return "list of paths";
  if (k.type === "string[]") return "list";
  if (k.type === "record") return "map";
  return k.type;
}

/** The README's configuration table (markdown), generated from CONFIG_KEYS. */
export function renderConfigTable(): string {
  const rows = CONFIG_KEYS.map((k) => {
    const req = k.required
      ? k.driverKind
        ? ` Required when driver.kind=${k.driverKind}.`
        : " Required when the suite runs."
      : k.driverKind
        ? ` Only for driver.kind=${k.driverKind}.`
        : "";
    return `| \`${k.path}\` | \`${envVarName(k.path)}\` | ${typeCell(k)} | ${defaultCell(k)} | ${k.meaning}${req} |`;
  });
  return [
    "| Key | Environment variable | Type | Default | Meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}
