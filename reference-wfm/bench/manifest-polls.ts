/**
 * Manifest-poll benchmark (issue 3): N simulated WFM Clients, each with its own SVID and its own
 * keep-alive mTLS connection, poll `GET /api/v1/deployments` with If-None-Match once per period,
 * evenly spread. Measures what a fleet costs one WFM process: 304s per second, p50/p99/max
 * latency, errors, the server's RSS and CPU. Not a test: it prints figures.
 *
 * Usage: npx tsx reference-wfm/bench/manifest-polls.ts [--clients 10000] [--period 15]
 *          [--duration 60] [--warmup <period>] [--workers 1] [--concurrency 32] [--keep]
 *          [--keep-alive S]
 *
 * --keep-alive S is passed to `margo-wfm serve` (its idle keep-alive; default 65 s). A value
 * below the period (e.g. 5, Node's own default) shows what a handshake per poll costs.
 *
 * The server is `margo-wfm serve` in a child process (the pid whose /proc entry is sampled), the
 * load generators are forked children, and clients are admitted (and their SVIDs minted) through
 * the admin service beforehand, timed on their own.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connectAdmin, wfmSpiffeId } from "../src/cli/admin-client.js";
import { runCli } from "../src/cli/main.js";
import type { CliIo } from "../src/cli/output.js";
import type { RunInfo } from "../src/cli/run-file.js";
import type { PhaseStats, WorkerClient, WorkerResult, WorkerStart } from "./poll-worker.js";

const here = dirname(fileURLToPath(import.meta.url));
const cliMain = resolve(here, "../src/cli/main.ts");
const workerFile = resolve(here, "poll-worker.ts");

const { values: args } = parseArgs({
  options: {
    clients: { type: "string", default: "10000" },
    period: { type: "string", default: "15" },
    duration: { type: "string", default: "60" },
    workers: { type: "string", default: "1" },
    concurrency: { type: "string", default: "32" },
    keep: { type: "boolean", default: false },
    "keep-alive": { type: "string" },
    warmup: { type: "string" },
  },
});
const N = Number(args.clients);
const periodMs = Number(args.period) * 1000;
const durationMs = Number(args.duration) * 1000;
const workers = Math.max(1, Number(args.workers));
const concurrency = Math.max(1, Number(args.concurrency));
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat counts in these ticks

const quiet: CliIo = { out: () => undefined, err: (l) => process.stderr.write(`${l}\n`) };
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function procSample(pid: number): { rssKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { rssKiB, cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function merge(parts: readonly PhaseStats[]): PhaseStats & { sorted: number[] } {
  const status: Record<string, number> = {};
  let errors = 0;
  let newConnections = 0;
  let staleRetries = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.status)) status[k] = (status[k] ?? 0) + v;
    errors += p.errors;
    newConnections += p.newConnections;
    staleRetries += p.staleRetries;
    firstError ??= p.firstError;
    for (const l of p.latencies) latencies.push(l);
  }
  const sorted = latencies.sort((a, b) => a - b);
  return {
    latencies,
    sorted,
    status,
    errors,
    newConnections,
    staleRetries,
    ...(firstError ? { firstError } : {}),
  };
}

async function startServer(dataDir: string): Promise<{ child: ChildProcess; run: RunInfo }> {
  const keepAlive = args["keep-alive"];
  const argv = [cliMain, "serve", "--json", "--data-dir", dataDir];
  if (keepAlive !== undefined) argv.push("--keep-alive", keepAlive);
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 10_000) stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolveLine, reject) => {
    lines.once("line", resolveLine);
    child.once("exit", (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  const run = JSON.parse(first) as RunInfo & { event: string };
  return { child, run };
}

async function admit(dataDir: string): Promise<WorkerClient[]> {
  const conn = await connectAdmin(dataDir);
  const out: WorkerClient[] = new Array(N);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < N; i = next++) {
      const clientId = `bench-${String(i).padStart(6, "0")}`;
      const res = await conn.call(conn.client.addClient, { clientId }, 60_000);
      const creds = res.credentials;
      if (!creds) throw new Error(`no credentials for ${clientId}`);
      out[i] = {
        clientId,
        certPem: creds.certificateChainPem,
        keyPem: creds.privateKeyPem,
        phase: i / N,
      };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  conn.close();
  return out;
}

function startWorker(): Promise<ChildProcess> {
  const child = fork(workerFile, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolveReady, reject) => {
    child.once("message", () => resolveReady(child));
    child.once("exit", (code) => reject(new Error(`load worker exited ${code}`)));
  });
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "margo-bench-"));
  const init = await runCli(
    [
      "init",
      "--data-dir",
      dataDir,
      "--trust-domain",
      "bench.example",
      "--wfm-id",
      "bench",
      "--management-port",
      "0",
      "--trust-port",
      "0",
      "--grpc-port",
      "0",
    ],
    quiet,
  );
  if (init !== 0) throw new Error(`init failed (${init})`);
  const { child: server, run } = await startServer(dataDir);
  const pid = run.pid;
  log(`server pid ${pid}, management port ${run.management.port}, data dir ${dataDir}`);
  try {
    const t0 = performance.now();
    const clients = await admit(dataDir);
    const mintSeconds = (performance.now() - t0) / 1000;
    log(`admitted ${N} clients (SVIDs minted) in ${fmt(mintSeconds)} s`);
    const afterMint = procSample(pid);

    const caPem = await readFile(join(dataDir, "operator", "bundle.pem"), "utf8");
    const config = JSON.parse(await readFile(join(dataDir, "wfm.json"), "utf8"));
    const procs = await Promise.all(Array.from({ length: workers }, startWorker));
    const startAt = Date.now() + 1000;
    // The first period opens every connection (N handshakes); later periods are the steady state.
    const warmupMs = args.warmup ? Number(args.warmup) * 1000 : periodMs;
    const results = procs.map(
      (p) =>
        new Promise<WorkerResult>((resolveResult, reject) => {
          p.once("message", (m: WorkerResult) => resolveResult(m));
          p.once("exit", (code) => code !== 0 && reject(new Error(`load worker exited ${code}`)));
        }),
    );
    procs.forEach((p, w) => {
      const msg: WorkerStart = {
        kind: "start",
        host: "127.0.0.1",
        port: run.management.port,
        wfmSpiffeId: wfmSpiffeId(config),
        caPem,
        clients: clients.filter((_c, i) => i % workers === w),
        periodMs,
        warmupMs,
        durationMs,
        startAt,
      };
      p.send(msg);
    });

    // Server samples: RSS throughout, CPU over the steady window only.
    let rssMaxKiB = 0;
    let steadyCpuStart: { ticks: number; at: number } | undefined;
    let steadyCpuEnd: { ticks: number; at: number } | undefined;
    const sampler = setInterval(() => {
      const s = procSample(pid);
      rssMaxKiB = Math.max(rssMaxKiB, s.rssKiB);
      const now = Date.now();
      if (now >= startAt + warmupMs && !steadyCpuStart)
        steadyCpuStart = { ticks: s.cpuTicks, at: now };
      if (now <= startAt + warmupMs + durationMs) steadyCpuEnd = { ticks: s.cpuTicks, at: now };
    }, 500);
    const parts = await Promise.all(results);
    clearInterval(sampler);
    const final = procSample(pid);

    const steady = merge(parts.map((p) => p.steady));
    const warm = merge(parts.map((p) => p.warmup));
    const perSecond = parts.reduce<number[]>(
      (acc, p) => p.notModifiedPerSecond.map((v, i) => v + (acc[i] ?? 0)),
      [],
    );
    const cpuPercent =
      steadyCpuStart && steadyCpuEnd && steadyCpuEnd.at > steadyCpuStart.at
        ? ((steadyCpuEnd.ticks - steadyCpuStart.ticks) /
            CLK_TCK /
            ((steadyCpuEnd.at - steadyCpuStart.at) / 1000)) *
          100
        : Number.NaN;
    const notModified = steady.status["304"] ?? 0;
    const figures = {
      clients: N,
      periodSeconds: periodMs / 1000,
      durationSeconds: durationMs / 1000,
      loadWorkers: workers,
      server: `margo-wfm serve --keep-alive ${args["keep-alive"] ?? "(default)"}`,
      mintSeconds: Number(mintSeconds.toFixed(2)),
      mintPerSecond: Number((N / mintSeconds).toFixed(1)),
      targetPerSecond: Number((N / (periodMs / 1000)).toFixed(1)),
      notModifiedPerSecond: Number((notModified / (durationMs / 1000)).toFixed(1)),
      notModifiedPerSecondMin: Math.min(...perSecond.slice(1, -1)),
      notModifiedPerSecondSeries: perSecond,
      steadyRequests: steady.latencies.length,
      steadyStatus: steady.status,
      steadyNewConnections: steady.newConnections,
      steadyStaleRetries: steady.staleRetries,
      errors: steady.errors + warm.errors,
      firstError: steady.firstError ?? warm.firstError,
      p50Ms: Number(fmt(percentile(steady.sorted, 50), 2)),
      p99Ms: Number(fmt(percentile(steady.sorted, 99), 2)),
      maxMs: Number(fmt(steady.sorted.at(-1) ?? Number.NaN, 2)),
      connectPhase: {
        requests: warm.latencies.length,
        status: warm.status,
        p50Ms: Number(fmt(percentile(warm.sorted, 50), 2)),
        p99Ms: Number(fmt(percentile(warm.sorted, 99), 2)),
        maxMs: Number(fmt(warm.sorted.at(-1) ?? Number.NaN, 2)),
      },
      serverRssMiBAfterMint: Number((afterMint.rssKiB / 1024).toFixed(1)),
      serverRssMiBMax: Number((Math.max(rssMaxKiB, final.rssKiB) / 1024).toFixed(1)),
      serverCpuPercentSteady: Number(fmt(cpuPercent, 1)),
      generatorLoopDelayP99Ms: Number(fmt(Math.max(...parts.map((p) => p.loopDelayP99Ms)), 2)),
      generatorLoopDelayMaxMs: Number(fmt(Math.max(...parts.map((p) => p.loopDelayMaxMs)), 2)),
      generatorCpuPercent: parts.map((p) => Number(fmt(p.cpuPercent, 1))),
      p99Under50Ms: percentile(steady.sorted, 99) < 50,
    };
    const rows: [string, string][] = [
      ["server", figures.server],
      ["clients / period", `${N} every ${periodMs / 1000} s (${figures.targetPerSecond} req/s)`],
      ["admission + SVID minting", `${figures.mintSeconds} s (${figures.mintPerSecond}/s)`],
      [
        `connect phase (first ${warmupMs / 1000} s)`,
        `${warm.latencies.length} req, p50 ${figures.connectPhase.p50Ms} ms, p99 ${figures.connectPhase.p99Ms} ms, max ${figures.connectPhase.maxMs} ms`,
      ],
      [
        "steady window",
        `${durationMs / 1000} s, ${steady.latencies.length} requests, status ${JSON.stringify(steady.status)}`,
      ],
      [
        "new TLS connections (steady)",
        `${steady.newConnections} of ${steady.latencies.length} requests (0 = every poll reused its keep-alive connection), ${steady.staleRetries} resent after the server closed an idle connection`,
      ],
      [
        "304 per second",
        `${figures.notModifiedPerSecond} mean, ${figures.notModifiedPerSecondMin} lowest whole second`,
      ],
      ["latency p50 / p99 / max", `${figures.p50Ms} / ${figures.p99Ms} / ${figures.maxMs} ms`],
      ["errors", `${figures.errors}${figures.firstError ? ` (first: ${figures.firstError})` : ""}`],
      [
        "server RSS",
        `${figures.serverRssMiBAfterMint} MiB after minting, ${figures.serverRssMiBMax} MiB max`,
      ],
      ["server CPU (steady)", `${figures.serverCpuPercentSteady} % of one core`],
      [
        "load generator (steady)",
        `event-loop delay p99 ${figures.generatorLoopDelayP99Ms} ms, max ${figures.generatorLoopDelayMaxMs} ms; CPU ${figures.generatorCpuPercent.join(" / ")} %`,
      ],
      ["target p99 < 50 ms", figures.p99Under50Ms ? "met" : "NOT met"],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    console.log(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n"));
    console.log(JSON.stringify({ benchmark: "manifest-polls", ...figures }));
  } finally {
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
    if (!args.keep) await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
