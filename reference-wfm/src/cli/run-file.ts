import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ListenAddress } from "../config.js";

/**
 * `<dataDir>/run.json`: where a running `serve` actually listens. wfm.json may say port 0 (any
 * free port, as tests use), so other commands learn the real ports here. Written after every
 * listener is up, removed on a clean exit; a file left by a killed server is recognised by its
 * dead pid and ignored.
 */
export const RUN_FILE = "run.json";

export interface RunInfo {
  pid: number;
  startedAt: string;
  management: ListenAddress;
  trust: ListenAddress;
  grpc: ListenAddress;
}

export async function writeRunInfo(dataDir: string, info: RunInfo): Promise<void> {
  await writeFile(join(dataDir, RUN_FILE), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

export async function removeRunInfo(dataDir: string, pid: number): Promise<void> {
  // Only our own file: a second serve started meanwhile must keep its entry.
  const current = await readRunInfo(dataDir, { includeStale: true });
  if (current?.pid === pid) await rm(join(dataDir, RUN_FILE), { force: true });
}

/** The live server's addresses, or undefined when none is recorded or its process is gone. */
export async function readRunInfo(
  dataDir: string,
  opts: { includeStale?: boolean } = {},
): Promise<RunInfo | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, RUN_FILE), "utf8");
  } catch {
    return undefined;
  }
  let info: RunInfo;
  try {
    info = JSON.parse(text) as RunInfo;
  } catch {
    return undefined; // torn write of a crashed server: treat as absent
  }
  if (opts.includeStale || isAlive(info.pid)) return info;
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else; still a live server.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
