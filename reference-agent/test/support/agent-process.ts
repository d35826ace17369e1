import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type AgentConfig, defaultConfig, saveConfig } from "../../src/config.js";
import type { LogEvent } from "../../src/log.js";
import { waitUntil } from "./docker.js";
import { reapOnExit } from "./reap.js";

const run = promisify(execFile);

/** The real `margo-agent` shim: the agent runs as a vendor would run it. */
export const MARGO_AGENT = fileURLToPath(new URL("../../bin/margo-agent", import.meta.url));

/** Where the agent finds its WFM (a real one from wfm-process.ts or a hostile one). */
export interface WfmEndpoints {
  managementUrl: string;
  grpcAddress?: string;
  bundleUrl?: string;
}

export interface AgentProcessOptions {
  wfm: WfmEndpoints;
  deviceId: string;
  /** Folder with svid.pem, svid.key, bundle.json/bundle.pem (from `client add` or minted). */
  identityDir: string;
  /** Hold a WatchManifest stream (needs wfm.grpcAddress). Default false. */
  watch?: boolean;
  /** Poll period; default 300 ms so tests converge quickly without watch. */
  pollMs?: number;
  driftCheckMs?: number;
  /** Last word on the config before it is written (per-test knobs). */
  configure?: (c: AgentConfig) => void;
  /** Extra environment for the child (e.g. MARGO_AGENT_DEBUG=1). */
  env?: Record<string, string>;
}

/** What `margo-agent status --json` prints (AgentView, 64-bit values as strings). */
export interface StatusJson {
  deviceId: string;
  manifestVersion?: string;
  deployments: Array<{
    deploymentId: string;
    state: string;
    desired: string;
    components: Array<{ name: string; state: string }>;
  }>;
  outbox: { pending: number; delivered: number; deadLettered: number };
  lastErrors: Array<{ at: number; kind: string; message: string }>;
  watching: boolean;
  [key: string]: unknown;
}

export interface AgentProcess {
  readonly config: AgentConfig;
  readonly configFile: string;
  readonly pid: number;
  /** The first JSON line `run` printed on stdout (its "started" announcement). */
  readonly started: Record<string, unknown>;
  /** Parsed stderr JSON log lines of every run so far, oldest first. */
  logs(): LogEvent[];
  /** Raw stderr of every run (for failure messages). */
  stderr(): string;
  /** Wait until a log line matches. */
  waitForLog(what: string, pred: (e: LogEvent) => boolean, timeoutMs?: number): Promise<LogEvent>;
  /** `margo-agent status --json --config F`, run as a separate process beside the agent. */
  status(): Promise<StatusJson>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait: nothing of the agent's shutdown runs. */
  kill9(): Promise<void>;
  /** Start again on the same config and state directory (after stop/kill9, or stops first). */
  restart(): Promise<void>;
  /** Stop and delete the state directory (never the identity folder, which the test owns). */
  dispose(): Promise<void>;
}

/** Write `agent.json` for a test agent and run `margo-agent run --config <file>`. */
export async function startAgent(opts: AgentProcessOptions): Promise<AgentProcess> {
  const stateDir = await mkdtemp(join(tmpdir(), "margo-agent-state-"));
  const config = defaultConfig(stateDir, {
    deviceId: opts.deviceId,
    wfmUrl: opts.wfm.managementUrl,
    identityDir: opts.identityDir,
  });
  config.wfm.watch = opts.watch ?? false;
  if (opts.wfm.grpcAddress) config.wfm.grpcAddress = opts.wfm.grpcAddress;
  if (opts.wfm.bundleUrl) config.trust.bundleUrl = opts.wfm.bundleUrl;
  config.polling = { periodMs: opts.pollMs ?? 300, jitterRatio: 0 };
  config.driftCheckMs = opts.driftCheckMs ?? 500;
  config.capabilitiesCheckMs = 5_000;
  config.plainHttpRegistries = [process.env.MARGO_REGISTRY ?? "127.0.0.1:5000"];
  // compose-multi's profile asks for this label (eligibility); harmless for the others.
  config.device.labels = { "margo-fixtures": "enabled" };
  opts.configure?.(config);
  const configFile = join(stateDir, "agent.json");
  await saveConfig(config, configFile);

  let errText = "";
  const events: LogEvent[] = [];
  const onErr = (chunk: string) => {
    errText += chunk;
  };
  let partial = "";
  const onErrLines = (chunk: string) => {
    partial += chunk;
    for (;;) {
      const nl = partial.indexOf("\n");
      if (nl < 0) break;
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const ev = JSON.parse(line) as LogEvent;
        if (ev && typeof ev === "object") events.push(ev);
      } catch {
        // not a log line (a stack trace of a crash): kept in stderr()
      }
    }
  };
  const env = { ...process.env, ...opts.env };
  let current: Spawned | undefined = await spawnRun(configFile, env, (c) => {
    onErr(c);
    onErrLines(c);
  });

  const halt = async (signal: NodeJS.Signals) => {
    const c = current;
    if (!c) return;
    current = undefined;
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
    await c.exited;
  };

  return {
    config,
    configFile,
    get pid() {
      return current?.child.pid ?? -1;
    },
    get started() {
      return current?.started ?? {};
    },
    logs: () => [...events],
    stderr: () => errText,
    waitForLog: (what, pred, timeoutMs = 20_000) =>
      waitUntil(`agent log: ${what}`, () => events.find(pred), { timeoutMs, intervalMs: 50 }),
    async status() {
      try {
        const { stdout } = await run(MARGO_AGENT, ["status", "--json", "--config", configFile], {
          timeout: 30_000,
        });
        return JSON.parse(stdout) as StatusJson;
      } catch (e) {
        const err = e as Error & { stderr?: string };
        throw new Error(`margo-agent status failed: ${err.message}\n${err.stderr ?? ""}`);
      }
    },
    stop: () => halt("SIGTERM"),
    kill9: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      current = await spawnRun(configFile, env, (c) => {
        onErr(c);
        onErrLines(c);
      });
    },
    async dispose() {
      await halt("SIGTERM");
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

interface Spawned {
  child: ChildProcess;
  started: Record<string, unknown>;
  exited: Promise<void>;
}

/** Spawn `run` and resolve on its first stdout JSON line; reject with stderr if it exits first. */
function spawnRun(
  configFile: string,
  env: NodeJS.ProcessEnv,
  onErr: (chunk: string) => void,
): Promise<Spawned> {
  const child = spawn(MARGO_AGENT, ["run", "--config", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  reapOnExit(child);
  let err = "";
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
    onErr(c.toString());
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`margo-agent run printed nothing within 30 s; stderr:\n${err}`));
    }, 30_000);
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`margo-agent run exited (${code ?? signal}) before starting:\n${err}`));
    };
    child.once("exit", onExit);
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      let started: Record<string, unknown>;
      try {
        started = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      } catch {
        started = { line: out.slice(0, nl) };
      }
      clearTimeout(timer);
      child.off("exit", onExit);
      child.stdout?.removeAllListeners("data");
      child.stdout?.resume();
      resolve({ child, started, exited });
    });
  });
}
