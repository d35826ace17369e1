import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type AgentConfig,
  CONFIG_FILE,
  defaultConfig,
  normaliseConfig,
  saveConfig,
} from "../config.js";
import { type CliIo, EXIT, type ExitCode, UsageError } from "./exit.js";

export const INIT_HELP = `margo-agent init: write <state-dir>/agent.json for one device (refuses to overwrite)

Usage:
  margo-agent init --state-dir D --device-id X --wfm-url https://H:P --identity-dir I [options]

Required:
  --state-dir D        state directory (SQLite state, extracted components); created 0700
  --device-id X        device id capabilities and statuses are reported under
  --wfm-url U          https base URL of the WFM Management Interface
  --identity-dir I     folder with svid.pem, svid.key and bundle.json or bundle.pem

Options:
  --grpc-address H:P   the WFM's gRPC WorkloadManagement address
  --watch              hold a WatchManifest stream beside polling (needs --grpc-address)
  --poll-ms N          polling period of GET /api/v1/deployments in ms (default 15000)
  --docker-socket S    Docker Engine socket for Compose (default /var/run/docker.sock)
  --bundle-url U       https URL of the SPIFFE trust bundle to refresh from
  --discovery-url U    https URL of a discovery document naming the bundle (instead of --bundle-url)
  --driver-port P      serve the DeviceDriver gRPC service on 127.0.0.1:P (0 = any free port)
  --help               this text
`;

/** `init`: build a config from flags, validate it like `run` would, write it once. */
export async function initCommand(argv: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      "state-dir": { type: "string" },
      "device-id": { type: "string" },
      "wfm-url": { type: "string" },
      "identity-dir": { type: "string" },
      "grpc-address": { type: "string" },
      watch: { type: "boolean" },
      "poll-ms": { type: "string" },
      "docker-socket": { type: "string" },
      "bundle-url": { type: "string" },
      "discovery-url": { type: "string" },
      "driver-port": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    io.out(INIT_HELP);
    return EXIT.ok;
  }
  for (const flag of ["state-dir", "device-id", "wfm-url", "identity-dir"] as const) {
    if (!values[flag]) throw new UsageError(`--${flag} is required`);
  }
  if (values.watch && !values["grpc-address"]) {
    throw new UsageError("--watch needs --grpc-address (the stream runs over gRPC)");
  }
  if (values["bundle-url"] && values["discovery-url"]) {
    throw new UsageError("give --bundle-url or --discovery-url, not both");
  }
  const stateDir = resolve(values["state-dir"] as string);
  const config: AgentConfig = defaultConfig(stateDir, {
    deviceId: values["device-id"] as string,
    wfmUrl: values["wfm-url"] as string,
    identityDir: resolve(values["identity-dir"] as string),
  });
  if (values["grpc-address"]) {
    if (!/^[^\s]+:\d{1,5}$/.test(values["grpc-address"])) {
      throw new UsageError(`--grpc-address must be host:port, got ${values["grpc-address"]}`);
    }
    config.wfm.grpcAddress = values["grpc-address"];
  }
  config.wfm.watch = values.watch ?? false;
  if (values["poll-ms"] !== undefined)
    config.polling.periodMs = integer("poll-ms", values["poll-ms"]);
  if (values["docker-socket"]) config.compose.dockerSocket = resolve(values["docker-socket"]);
  if (values["bundle-url"]) config.trust.bundleUrl = values["bundle-url"];
  if (values["discovery-url"]) config.trust.discoveryUrl = values["discovery-url"];
  if (values["driver-port"] !== undefined) {
    const port = integer("driver-port", values["driver-port"]);
    if (port > 65535) throw new UsageError("--driver-port must be 0..65535");
    config.driver = { host: "127.0.0.1", port };
  }
  // The same checks `run` applies, so a config that init wrote always loads.
  const checked = normaliseConfig(config);
  const file = join(stateDir, CONFIG_FILE);
  if (existsSync(file)) {
    throw new UsageError(`${file} already exists; edit it or choose another --state-dir`);
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await saveConfig(checked, file);
  io.out(`wrote ${file}`);
  return EXIT.ok;
}

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`--${flag} must be a whole number, got ${text}`);
  return Number(text);
}
