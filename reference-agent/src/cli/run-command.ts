import { rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { RunningAgent } from "../agent-api.js";
import { CONFIG_FILE, loadConfig } from "../config.js";
import { stderrLog } from "../log.js";
import { type CliIo, EXIT, type ExitCode } from "./exit.js";
import { RUN_FILE, type RunInfo, writeRunInfo } from "./run-file.js";

export const RUN_HELP = `margo-agent run: run the agent in the foreground

Usage:
  margo-agent run [--config F]

  --config F   agent.json to run with (default ./agent.json)
  --help       this text

Prints one JSON line on stdout once started: {"pid":N,"driverPort":P|null}; logs are JSON lines
on stderr. SIGTERM/SIGINT stop it gracefully (exit 0); SIGUSR1 syncs with the WFM now.
With "driver" in the config the DeviceDriver gRPC service listens too (bearer token in
<stateDir>/driver.token unless driver.tokenFile says otherwise), and an agent whose identity is
not provisioned yet waits for DeviceDriver Configure instead of failing.
`;

/** How often run.json is refreshed when `watching` or the runtimes changed. */
const RUN_INFO_CHECK_MS = 2_000;

/** `run`: start, announce, serve until a stop signal. Resolves with the exit code. */
export async function runCommand(argv: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { config: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    io.out(RUN_HELP);
    return EXIT.ok;
  }
  const config = await loadConfig(values.config ?? CONFIG_FILE);
  const log = stderrLog;
  const { startAgent } = await import("../agent.js");

  // Handlers before start: a stop during a slow start still closes what was started.
  let stopping: ((signal: string) => void) | undefined;
  const stopped = new Promise<string>((res) => {
    stopping = res;
  });
  const onStop = (signal: NodeJS.Signals) => stopping?.(signal);
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);

  let current: () => RunningAgent | undefined;
  let closeAll: () => Promise<void>;
  let driverPort: number | null = null;

  if (config.driver) {
    const { AgentSupervisor } = await import("../driver/supervisor.js");
    const { startDeviceDriverServer } = await import("../driver/device-driver-server.js");
    const supervisor = new AgentSupervisor(config, startAgent, log);
    try {
      await supervisor.start();
    } catch (e) {
      // The DeviceDriver is a provisioning path: without identity yet, wait for Configure.
      if ((e as Error).name !== "IdentitySetupError") throw e;
      log({
        level: "warn",
        msg: `not provisioned yet, waiting for DeviceDriver Configure: ${(e as Error).message}`,
        kind: "identity-not-provisioned",
      });
    }
    const server = await startDeviceDriverServer(supervisor, {
      host: config.driver.host,
      port: config.driver.port,
      ...(config.driver.tokenFile !== undefined ? { tokenFile: config.driver.tokenFile } : {}),
      stateDir: config.stateDir,
      log,
    });
    driverPort = server.port;
    current = () => supervisor.current();
    closeAll = async () => {
      await server.close();
      await supervisor.close();
    };
  } else {
    const agent = await startAgent(config, { log });
    current = () => agent;
    closeAll = () => agent.close();
  }

  const onUsr1 = () => current()?.syncNow();
  process.on("SIGUSR1", onUsr1);

  const startedAt = Date.now();
  let lastInfo = "";
  const refreshRunInfo = async () => {
    const view = current()?.view();
    const info: RunInfo = {
      pid: process.pid,
      startedAt,
      driverPort,
      watching: view?.watching ?? false,
      runtimes: view?.runtimes ?? [],
      updatedAt: Date.now(),
    };
    const key = JSON.stringify({ ...info, updatedAt: 0 });
    if (key === lastInfo) return;
    lastInfo = key;
    await writeRunInfo(config.stateDir, info);
  };
  await refreshRunInfo();
  const timer = setInterval(() => {
    refreshRunInfo().catch((e: Error) =>
      log({ level: "warn", msg: `cannot write ${RUN_FILE}: ${e.message}` }),
    );
  }, RUN_INFO_CHECK_MS);
  timer.unref();

  io.out(JSON.stringify({ pid: process.pid, driverPort }));

  const signal = await stopped;
  log({ level: "info", msg: `stopping on ${signal}` });
  clearInterval(timer);
  process.off("SIGUSR1", onUsr1);
  await closeAll();
  await rm(join(config.stateDir, RUN_FILE), { force: true });
  process.off("SIGTERM", onStop);
  process.off("SIGINT", onStop);
  return EXIT.ok;
}
