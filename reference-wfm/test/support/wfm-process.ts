import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./wfm-child.ts", import.meta.url));

/** A WFM running as a separate OS process, so tests can SIGKILL it for real. */
export interface WfmProcess {
  pid: number;
  managementPort: number;
  trustPort: number;
  grpcPort: number | null;
  child: ChildProcess;
  /** Everything the child wrote to stderr so far (for failure messages). */
  stderr(): string;
  /** SIGKILL and wait for exit: no cleanup code in the child runs. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for a graceful exit. */
  stop(): Promise<void>;
}

/**
 * Start `wfm-child.ts` on an initialised data dir (see `ensureInitialised`) and wait for the
 * ports line. Rejects with the child's stderr if it exits or prints nothing within `timeoutMs`.
 */
export function startWfmProcess(
  dataDir: string,
  opts: { grpc?: boolean; timeoutMs?: number } = {},
): Promise<WfmProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WFM_CHILD_GRPC: opts.grpc === false ? "0" : "1" },
  });
  let err = "";
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waitExit = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`WFM child did not start in time; stderr:\n${err}`));
    }, opts.timeoutMs ?? 30_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`WFM child exited (${code ?? signal}) before printing ports:\n${err}`));
    });
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      const info = JSON.parse(out.slice(0, nl)) as {
        pid: number;
        managementPort: number;
        trustPort: number;
        grpcPort: number | null;
      };
      resolve({
        ...info,
        child,
        stderr: () => err,
        kill9: () => waitExit("SIGKILL"),
        stop: () => waitExit("SIGTERM"),
      });
    });
  });
}
