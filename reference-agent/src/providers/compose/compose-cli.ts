import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Running the Compose CLI. The agent drives `docker compose` (v2) or `docker-compose` (v1) as a
 * child process rather than reimplementing Compose: what a device vendor runs by hand is then
 * exactly what the agent ran, and every Compose feature of the archive works.
 */

/** How one CLI run ended; `stderr` is kept to its tail for error messages. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed by us because the deadline passed. */
  timedOut: boolean;
}

/** Keep only the end of CLI output: the cause of a compose failure is in its last lines. */
const TAIL_BYTES = 4096;

function tail(s: string): string {
  return s.length > TAIL_BYTES ? `...${s.slice(-TAIL_BYTES)}` : s;
}

/**
 * runCli spawns `argv` (no shell, so no quoting issues with project paths), and kills it with
 * SIGTERM then SIGKILL on abort or timeout, so a hung `compose up` never outlives its deadline.
 * Rejects only when the signal aborted (with its reason); a timeout resolves with `timedOut`.
 */
export function runCli(
  argv: readonly string[],
  opts: { env: NodeJS.ProcessEnv; signal?: AbortSignal; timeoutMs?: number; cwd?: string },
): Promise<CliResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error("empty command"));
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const child = spawn(cmd, args, {
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout = tail(stdout + c);
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr = tail(stderr + c);
    });
    const kill = () => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      killTimer.unref();
    };
    const onAbort = () => kill();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const deadline =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, opts.timeoutMs)
        : undefined;
    const done = () => {
      if (deadline) clearTimeout(deadline);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
    };
    child.on("error", (e) => {
      done();
      resolve({
        code: null,
        signal: null,
        stdout,
        stderr: tail(`${stderr}${e.message}`),
        timedOut,
      });
    });
    child.on("close", (code, signal) => {
      done();
      if (opts.signal?.aborted) reject(opts.signal.reason);
      else resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** A compose command that answered `version`, with the version it printed. */
export interface ComposeCommand {
  argv: string[];
  version: string;
}

/**
 * Where the docker CLI looks for its plugins, in its own order: the user's config dir first, then
 * the system dirs.
 */
function pluginDirs(env: NodeJS.ProcessEnv): string[] {
  return [
    join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "cli-plugins"),
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
  ];
}

/**
 * The compose v2 plugin binary the docker CLI would run for `docker compose`, if any. Run directly
 * it is the same compose (it works standalone and reads DOCKER_HOST like the CLI), but skips the
 * docker CLI's start and plugin scan, which cost ~0.15-0.2 s on every `up`.
 */
async function composePlugin(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of pluginDirs(env)) {
    const bin = join(dir, "docker-compose");
    try {
      await access(bin, constants.X_OK);
      return bin;
    } catch {
      // Not in this dir: the CLI would look in the next.
    }
  }
  return undefined;
}

/**
 * detectCompose tries the configured command, else the compose v2 plugin binary run directly,
 * else `docker compose` (v2), else `docker-compose` (v1, for hosts that only have it); the
 * reasons when none answers. A plugin binary reporting v1 is skipped.
 */
export async function detectCompose(
  env: NodeJS.ProcessEnv,
  configured?: readonly string[],
): Promise<{ found: ComposeCommand } | { reason: string }> {
  const plugin = configured ? undefined : await composePlugin(env);
  const candidates = configured
    ? [[...configured]]
    : [...(plugin ? [[plugin]] : []), ["docker", "compose"], ["docker-compose"]];
  const reasons: string[] = [];
  for (const argv of candidates) {
    const r = await runCli([...argv, "version", "--short"], { env, timeoutMs: 15_000 });
    const version = r.stdout.trim().split("\n")[0]?.trim() ?? "";
    // A plugin binary that is (somehow) compose v1 does not take v2's standalone arguments.
    const v1Plugin = plugin !== undefined && argv[0] === plugin && /^v?1\./.test(version);
    if (r.code === 0 && version !== "" && !v1Plugin) return { found: { argv, version } };
    reasons.push(`${argv.join(" ")}: ${(r.stderr.trim() || `exit ${r.code}`).split("\n").pop()}`);
  }
  return { reason: `no compose command works (${reasons.join("; ")})` };
}
