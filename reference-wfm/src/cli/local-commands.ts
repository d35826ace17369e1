import { access, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  CONFIG_FILE,
  DEFAULT_KEEP_ALIVE_SECONDS,
  defaultConfig,
  loadConfig,
  type WfmConfig,
} from "../config.js";
import type { CommandContext, CommandSpec } from "./command-spec.js";
import { OPERATOR_DIR, writeCredentialFiles } from "./credential-files.js";
import { DataDirError, ListenError, UsageError } from "./errors.js";
import { jsonLine } from "./output.js";
import { type RunInfo, removeRunInfo, writeRunInfo } from "./run-file.js";

/**
 * The two commands that work on the data directory itself rather than through the admin API:
 * `init` creates the trust domain and the operator's credentials, `serve` runs the WFM.
 */

/** The composition root pulls in the store, HTTP and gRPC stacks: load it only for init/serve. */
async function loadRuntime() {
  return (await import("./runtime.js")).wfmRuntime;
}

const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

function port(ctx: CommandContext, name: string, fallback: number): number {
  const v = ctx.values[name];
  if (typeof v !== "string") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535 || v.trim() === "") {
    throw new UsageError(
      `--${name} ${v} is not a port number (0-65535; 0 = any free port)`,
      "init",
    );
  }
  return n;
}

/** Builds the config `init` persists from the defaults and the flags. */
export function configFromFlags(ctx: CommandContext): WfmConfig {
  const trustDomain = String(ctx.values["trust-domain"] ?? "");
  const wfmId = String(ctx.values["wfm-id"] ?? "");
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new UsageError(
      `--trust-domain "${trustDomain}" is not a SPIFFE trust domain: lowercase letters, digits, ".", "-", "_" only, no scheme or path (e.g. example.org)`,
      "init",
    );
  }
  if (!SPIFFE_SEGMENT.test(wfmId)) {
    throw new UsageError(
      `--wfm-id "${wfmId}" is not one SPIFFE path segment: letters, digits, ".", "-", "_" only`,
      "init",
    );
  }
  const config = defaultConfig(resolve(ctx.dataDir), { trustDomain, wfmId });
  const host = typeof ctx.values.host === "string" ? ctx.values.host : config.management.host;
  config.management = { host, port: port(ctx, "management-port", config.management.port) };
  config.trust = { host, port: port(ctx, "trust-port", config.trust.port) };
  config.grpc = { host, port: port(ctx, "grpc-port", config.grpc.port) };
  const hostnames = ctx.values.hostname;
  if (Array.isArray(hostnames) && hostnames.length > 0) config.hostnames = hostnames;
  const publicUrl = ctx.values["trust-public-url"];
  config.trustPublicUrl =
    typeof publicUrl === "string"
      ? publicUrl
      : `https://${config.hostnames[0] ?? host}:${config.trust.port}`;
  return config;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Turns the usual listen failures into a message naming the port and the fix. */
function listenError(e: unknown, config: WfmConfig): unknown {
  const err = e as NodeJS.ErrnoException & { port?: number; address?: string };
  if (err?.code !== "EADDRINUSE" && err?.code !== "EACCES" && err?.code !== "EADDRNOTAVAIL") {
    return e;
  }
  const where = `${err.address ?? "?"}:${err.port ?? "?"}`;
  const why =
    err.code === "EADDRINUSE"
      ? "is in use (another `margo-wfm serve` on this data dir?)"
      : err.code === "EACCES"
        ? "needs privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        : "is not an address of this machine";
  return new ListenError(
    `cannot listen on ${where}: it ${why}; change the ports or --host in ${join(config.dataDir, CONFIG_FILE)} (init --management-port/--trust-port/--grpc-port)`,
  );
}

const initCommand: CommandSpec = {
  path: ["init"],
  summary: "Create a data directory: config, trust domain CA, WFM SVID and operator credentials.",
  options: {
    "trust-domain": {
      type: "string",
      arg: "T",
      required: true,
      description: "SPIFFE trust domain, e.g. example.org",
    },
    "wfm-id": {
      type: "string",
      arg: "W",
      required: true,
      description: "the WFM's id: spiffe://<T>/margo/wfm/<W>",
    },
    "management-port": {
      type: "string",
      arg: "P",
      description: "Management Interface port (default 443; 0 = any free port)",
    },
    "trust-port": {
      type: "string",
      arg: "P",
      description: "discovery / trust bundle port (default 8443)",
    },
    "grpc-port": {
      type: "string",
      arg: "P",
      description: "gRPC port (admin, driver, WorkloadManagement; default 8444)",
    },
    host: {
      type: "string",
      arg: "ADDR",
      description: "address every listener binds (default 127.0.0.1)",
    },
    hostname: {
      type: "string",
      arg: "NAME",
      multiple: true,
      description: "DNS name or IP put on the WFM SVID (default localhost, 127.0.0.1)",
    },
    "trust-public-url": {
      type: "string",
      arg: "URL",
      description:
        "base URL devices use for the trust listener (default https://<first hostname>:<trust-port>)",
    },
    operator: {
      type: "string",
      arg: "NAME",
      description: "operator name: spiffe://<T>/operator/<NAME> (default admin)",
    },
  },
  notes: [
    "Writes <DIR>/wfm.json, the WFM's database and CA, and <DIR>/operator/ (the CLI's own SVID,",
    "which every other command uses to reach the admin service). Refuses an initialised folder.",
  ],
  async run(ctx) {
    const config = configFromFlags(ctx);
    const operator = typeof ctx.values.operator === "string" ? ctx.values.operator : "admin";
    if (!SPIFFE_SEGMENT.test(operator)) {
      throw new UsageError(`--operator "${operator}" is not one SPIFFE path segment`, "init");
    }
    if (await exists(join(config.dataDir, CONFIG_FILE))) {
      throw new DataDirError(
        `${config.dataDir} is already initialised (${CONFIG_FILE} exists): use it with \`margo-wfm serve --data-dir ${config.dataDir}\`, or pick an empty folder`,
      );
    }
    try {
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new DataDirError(`cannot create ${config.dataDir}: ${(e as Error).message}`);
    }
    const creds = await (await loadRuntime()).initialise(config, operator);
    const files = await writeCredentialFiles(join(config.dataDir, OPERATOR_DIR), creds);
    if (ctx.json) {
      ctx.io.out(
        jsonLine({
          dataDir: config.dataDir,
          wfmSpiffeId: `spiffe://${config.trustDomain}/margo/wfm/${config.wfmId}`,
          operatorSpiffeId: creds.spiffeId,
          management: config.management,
          trust: config.trust,
          grpc: config.grpc,
          operatorFiles: files,
        }),
      );
      return;
    }
    ctx.io.out(`initialised ${config.dataDir}`);
    ctx.io.out(`  WFM       spiffe://${config.trustDomain}/margo/wfm/${config.wfmId}`);
    ctx.io.out(
      `  operator  ${creds.spiffeId} (credentials in ${join(config.dataDir, OPERATOR_DIR)})`,
    );
    ctx.io.out(`start it with: margo-wfm serve --data-dir ${config.dataDir}`);
  },
};

const serveCommand: CommandSpec = {
  path: ["serve"],
  options: {
    "keep-alive": {
      type: "string",
      arg: "SECONDS",
      description: `idle keep-alive of Management Interface connections (default: managementKeepAliveSeconds of wfm.json, ${DEFAULT_KEEP_ALIVE_SECONDS} unless changed; keep it above the devices' poll period)`,
    },
  },
  summary: "Run the WFM: Management Interface, trust endpoints and gRPC, until SIGTERM/SIGINT.",
  notes: [
    "Writes <DIR>/run.json (pid and the live ports, which other commands read) once listening,",
    "and removes it on a clean stop. With --json, prints one line:",
    '  {"event":"listening","pid":N,"management":{"host":H,"port":P},"trust":{...},"grpc":{...}}',
    "SIGTERM or SIGINT closes the listeners and the database gracefully and exits 0.",
  ],
  async run(ctx) {
    let config: WfmConfig;
    try {
      config = await loadConfig(ctx.dataDir);
    } catch (e) {
      throw new DataDirError(
        `cannot read ${join(ctx.dataDir, CONFIG_FILE)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run \`margo-wfm init --data-dir ${ctx.dataDir} --trust-domain T --wfm-id W\` first`,
      );
    }
    const keepAlive = ctx.values["keep-alive"];
    if (keepAlive !== undefined) {
      const seconds = Number(keepAlive);
      if (
        typeof keepAlive !== "string" ||
        keepAlive.trim() === "" ||
        !Number.isFinite(seconds) ||
        seconds < 0
      ) {
        throw new UsageError(`--keep-alive ${keepAlive} is not a number of seconds`, "serve");
      }
      config = { ...config, managementKeepAliveSeconds: seconds };
    }
    const running = await (await loadRuntime()).start(config).catch((e: unknown) => {
      throw listenError(e, config);
    });
    const info: RunInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      management: { host: config.management.host, port: running.ports.management },
      trust: { host: config.trust.host, port: running.ports.trust },
      grpc: { host: config.grpc.host, port: running.ports.grpc },
    };
    await writeRunInfo(config.dataDir, info);
    if (ctx.json) {
      ctx.io.out(jsonLine({ event: "listening", ...info }));
    } else {
      ctx.io.out(`margo-wfm ${config.wfmId} (pid ${process.pid}) listening:`);
      ctx.io.out(`  management  https://${info.management.host}:${info.management.port}/api/v1/`);
      ctx.io.out(`  trust       https://${info.trust.host}:${info.trust.port}/.well-known/margo`);
      ctx.io.out(`  grpc        ${info.grpc.host}:${info.grpc.port}`);
    }
    const signal = await ctx.waitForStop();
    if (!ctx.json) ctx.io.out(`${signal}: closing`);
    try {
      await running.close();
    } finally {
      await removeRunInfo(config.dataDir, process.pid);
    }
    if (ctx.json) ctx.io.out(jsonLine({ event: "stopped", signal }));
  },
};

export const localCommands: CommandSpec[] = [initCommand, serveCommand];
