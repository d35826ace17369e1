import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@margo/proto/identity/light";

/** `<stateDir>/run.json`: what only the running process knows, for `margo-agent status`. */
export const RUN_FILE = "run.json";

/**
 * The live facts of a running agent that the state database does not hold (the WatchManifest
 * stream, runtime probes, the DeviceDriver port). `run` rewrites it when they change; `status`
 * trusts it only while `pid` is alive.
 */
export interface RunInfo {
  pid: number;
  startedAt: number;
  driverPort: number | null;
  watching: boolean;
  runtimes: Array<{ type: string; available: boolean; reason?: string; version?: string }>;
  updatedAt: number;
}

export async function writeRunInfo(stateDir: string, info: RunInfo): Promise<void> {
  await writeFileAtomic(join(stateDir, RUN_FILE), `${JSON.stringify(info)}\n`, 0o644);
}

/** The run file if present and its process is alive; undefined otherwise. */
export function readLiveRunInfo(stateDir: string): RunInfo | undefined {
  let info: RunInfo;
  try {
    info = JSON.parse(readFileSync(join(stateDir, RUN_FILE), "utf8")) as RunInfo;
  } catch {
    return undefined;
  }
  if (typeof info.pid !== "number") return undefined;
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    // EPERM: alive but another user's; anything else: gone (a kill -9 leaves the file behind).
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return undefined;
  }
  return info;
}
