/**
 * What-if server for bench/manifest-polls.ts `--server-keep-alive S`: the same composition root as
 * `margo-wfm serve`, with the Management Interface's idle keep-alive timeout raised to S seconds.
 * Node's default (5 s) is shorter than a 15 s poll period, so without this every poll pays a full
 * mTLS handshake; the flag measures what the WFM costs once the edge keeps connections open.
 * Bench-only: it reaches the listener through process._getActiveHandles() because startWfm
 * does not expose it.
 */
import { Server } from "node:https";
import { removeRunInfo, writeRunInfo } from "../src/cli/run-file.js";
import { loadConfig } from "../src/config.js";
import { startWfm } from "../src/wfm.js";

const [dataDir, seconds] = process.argv.slice(2);
if (!dataDir || !seconds) throw new Error("usage: serve-keepalive.ts DATA_DIR SECONDS");
const running = await startWfm(await loadConfig(dataDir));
const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
const management = handles.find(
  (h): h is Server =>
    h instanceof Server &&
    (h.address() as { port?: number } | null)?.port === running.managementPort,
);
if (!management) throw new Error("management listener not found");
management.keepAliveTimeout = Number(seconds) * 1000;
const addr = (port: number | undefined) => ({ host: "127.0.0.1", port: port ?? 0 });
const info = {
  pid: process.pid,
  startedAt: new Date().toISOString(),
  management: addr(running.managementPort),
  trust: addr(running.trustPort),
  grpc: addr(running.grpcPort),
};
await writeRunInfo(dataDir, info);
console.log(
  JSON.stringify({ event: "listening", ...info, keepAliveTimeoutMs: management.keepAliveTimeout }),
);
const stop = async () => {
  await running.close();
  await removeRunInfo(dataDir, process.pid);
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
