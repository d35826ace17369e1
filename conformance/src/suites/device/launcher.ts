import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { DeviceSuiteConfig } from "../../config/types.js";

/**
 * Starts the vendor's device with its configured shell command and learns where its
 * DeviceDriverService listens from the first JSON line it prints. The harness owns the process
 * group, so close() also ends whatever the command started (an agent under a wrapper script).
 */

/** The device command failed to start or never said where its driver listens. */
export class LaunchError extends Error {
  override readonly name = "LaunchError";
}

export interface LaunchedDevice {
  /** host:port of DeviceDriverService. */
  readonly address: string;
  readonly logFile: string;
  /** Stop the process group and start the command again (same env), waiting for its ready line. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface LaunchOptions {
  launch: NonNullable<DeviceSuiteConfig["launch"]>;
  workDir: string;
  dockerHost?: string;
  kubeconfig?: string;
  log(line: string): void;
}

const STOP_GRACE_MS = 5_000;
/** stderr lines kept for the message when the device dies unexpectedly. */
const TAIL_LINES = 20;

export async function launchDevice(o: LaunchOptions): Promise<LaunchedDevice> {
  const logFile = join(o.workDir, "device.log");
  const logStream = createWriteStream(logFile, { flags: "a" });
  let child: ChildProcess | undefined;
  let address = "";
  const tail: string[] = [];

  const start = async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(o.launch.env ?? {}),
      MARGO_CONFORMANCE_WORKDIR: o.workDir,
      ...(o.dockerHost ? { MARGO_CONFORMANCE_DOCKER_HOST: o.dockerHost } : {}),
      ...(o.kubeconfig ? { MARGO_CONFORMANCE_KUBECONFIG: o.kubeconfig } : {}),
    };
    const c = spawn("bash", ["-c", o.launch.command], {
      cwd: o.launch.cwd ?? o.workDir,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    c.stderr?.pipe(logStream, { end: false });
    // The last stderr lines, so a device that dies mid-run says why in the harness's own log
    // (the work folder, and the full log with it, may be gone by the time anyone looks).
    c.stderr?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line) tail.push(line);
      if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
    });
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          fail(
            `no {"driverAddress"|"driverPort"} line on stdout within ${o.launch.readyTimeoutMs} ms`,
          ),
        o.launch.readyTimeoutMs,
      );
      const lastLines = () =>
        tail.length ? `; last stderr lines:\n${tail.slice(-5).join("\n")}` : "";
      const fail = (why: string) => {
        clearTimeout(timer);
        // A command that never got ready must not outlive the harness.
        if (c.pid !== undefined && c.exitCode === null) killGroup(c.pid, "SIGKILL");
        reject(
          new LaunchError(
            `device command ${JSON.stringify(o.launch.command)}: ${why} (log: ${logFile})${lastLines()}`,
          ),
        );
      };
      c.once("error", (e) => fail(e.message));
      c.once("exit", (code, sig) => fail(`exited (${code ?? sig}) before it was ready`));
      const lines = createInterface({ input: c.stdout as NonNullable<typeof c.stdout> });
      lines.on("line", (line) => {
        logStream.write(`[stdout] ${line}\n`);
        const found = driverAddressOf(line);
        if (found) {
          clearTimeout(timer);
          c.removeAllListeners("exit");
          c.once("exit", (code, sig) => {
            if (child !== c) return;
            o.log(
              `device process ${c.pid} exited unexpectedly (${code ?? sig}); last stderr lines:\n${tail.join("\n")}`,
            );
          });
          resolve(found);
        }
      });
    });
    o.log(`device launched (pid ${child.pid}), DeviceDriver at ${address}`);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    killGroup(c.pid, "SIGTERM");
    const timer = setTimeout(
      () => c.pid !== undefined && killGroup(c.pid, "SIGKILL"),
      STOP_GRACE_MS,
    );
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    get address() {
      return address;
    },
    logFile,
    async restart() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      logStream.end();
    },
  };
}

/** `{"driverAddress":"host:port"}` or `{"driverPort":N}` (loopback), else undefined. */
export function driverAddressOf(line: string): string | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(trimmed) as { driverAddress?: unknown; driverPort?: unknown };
    if (typeof v.driverAddress === "string" && v.driverAddress !== "") return v.driverAddress;
    if (typeof v.driverPort === "number" && v.driverPort > 0) return `127.0.0.1:${v.driverPort}`;
  } catch {
    // Not JSON after all: an ordinary log line.
  }
  return undefined;
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/** The bearer token: `driver.token`, or the trimmed content of `driver.tokenFile` ({workdir} expanded). */
export async function readDriverToken(
  driver: DeviceSuiteConfig["driver"],
  workDir: string,
): Promise<string> {
  if (driver.token) return driver.token;
  if (driver.tokenFile) {
    const file = driver.tokenFile.replaceAll("{workdir}", workDir);
    const deadline = Date.now() + 10_000;
    // A freshly launched device may write its token a moment after it prints the ready line.
    for (;;) {
      try {
        const text = (await readFile(file, "utf8")).trim();
        if (text) return text;
      } catch (e) {
        if (Date.now() > deadline) {
          throw new LaunchError(`driver.tokenFile ${file}: ${(e as Error).message}`);
        }
      }
      if (Date.now() > deadline) throw new LaunchError(`driver.tokenFile ${file} is empty`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new LaunchError("device.driver.token or device.driver.tokenFile must be set");
}
