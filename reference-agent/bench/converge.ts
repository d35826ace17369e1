/**
 * Convergence benchmark of the reference agent (a script, not a test): a real `margo-wfm serve`
 * child, real `margo-agent run` children, the real Docker Engine and registry on loopback.
 *
 * Prints:
 * - idle RSS (VmRSS) and CPU of the agent process, settled, with 0 and with 1 deployment, sampled
 *   over --idle-seconds (default 30);
 * - time from the WFM-side change (the first Deploy rpc sent) to `installed` visible at the WFM
 *   (WfmDriver ListReportedStatuses, polled every 50 ms) for 1, 10 and 50 compose-single
 *   deployments on one agent, with WatchManifest and with polling only (--poll-ms, default 1000),
 *   and the time from the Undeploy rpcs to `removed` for all of them.
 *
 * Usage: npm run bench:converge -w @margo/reference-agent -- [--sizes 1,10,50] [--idle-seconds 30]
 *        [--poll-ms 1000] [--skip-idle] [--agent-log FILE]
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type AgentProcess, startAgent } from "../test/support/agent-process.js";
import { cleanupDevices, deviceContainers } from "../test/support/docker.js";
import { startWfm, type WfmDriver } from "../test/support/wfm-process.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,10,50" },
    "idle-seconds": { type: "string", default: "30" },
    "poll-ms": { type: "string", default: "1000" },
    "skip-idle": { type: "boolean", default: false },
    "agent-log": { type: "string" },
  },
});
const SIZES = (values.sizes ?? "1,10,50").split(",").map(Number);
const IDLE_S = Number(values["idle-seconds"]);
const POLL_MS = Number(values["poll-ms"]);
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat counts in these ticks

interface Sample {
  rssMbMax: number;
  rssMbEnd: number;
  cpuPercent: number;
}

/** VmRSS in MB and utime+stime ticks of a process. */
function procStats(pid: number): { rssMb: number; ticks: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  // Fields after the command name (which may contain spaces) start at index 2 (state).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]); // utime (14th), stime (15th)
  return { rssMb: kb / 1024, ticks };
}

async function sampleIdle(pid: number, seconds: number): Promise<Sample> {
  const start = procStats(pid);
  let max = start.rssMb;
  let last = start;
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    last = procStats(pid);
    max = Math.max(max, last.rssMb);
  }
  const elapsed = (Date.now() - t0) / 1000;
  return {
    rssMbMax: max,
    rssMbEnd: last.rssMb,
    cpuPercent: ((last.ticks - start.ticks) / CLK_TCK / elapsed) * 100,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until every deployment's latest report at the WFM is `state`; ms per deployment from t0. */
async function waitAll(
  driver: WfmDriver,
  clientId: string,
  ids: string[],
  state: string,
  t0: number,
  timeoutMs: number,
): Promise<number[]> {
  const done = new Map<string, number>();
  while (done.size < ids.length) {
    if (Date.now() - t0 > timeoutMs) {
      process.stderr.write(
        `  only ${done.size}/${ids.length} reached ${state} in ${timeoutMs} ms\n`,
      );
      break;
    }
    const latest = await driver.listStatuses({ clientId });
    const now = Date.now();
    for (const s of latest) {
      if (ids.includes(s.deploymentId) && s.state === state && !done.has(s.deploymentId)) {
        done.set(s.deploymentId, now - t0);
      }
    }
    if (done.size < ids.length) await sleep(50);
  }
  return ids.map((id) => done.get(id) ?? Number.NaN);
}

interface Row {
  mode: string;
  n: number;
  /** How many reached installed within the time limit. */
  done: number;
  firstMs: number;
  p50Ms: number;
  lastMs: number;
  undeployMs: number;
}

async function runConvergence(
  driver: WfmDriver,
  appId: string,
  mode: "watch" | "poll",
  clientId: string,
  deviceId: string,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of SIZES) {
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await driver.deploy(clientId, deviceId, appId));
    const times = await waitAll(driver, clientId, ids, "installed", t0, 60_000 + n * 5_000);
    const sorted = times.filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
    const u0 = Date.now();
    for (const id of ids) await driver.undeploy(id);
    const removed = await waitAll(driver, clientId, ids, "removed", u0, 60_000 + n * 5_000);
    rows.push({
      mode,
      n,
      done: sorted.length,
      firstMs: sorted[0] ?? Number.NaN,
      p50Ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN,
      lastMs: sorted[sorted.length - 1] ?? Number.NaN,
      undeployMs: Math.max(...removed),
    });
    const left = await deviceContainers(deviceId);
    if (left.length > 0) console.error(`warning: ${left.length} containers left after undeploy`);
    process.stderr.write(`  ${mode} n=${n}: last installed ${rows.at(-1)?.lastMs} ms\n`);
    await sleep(1000);
  }
  return rows;
}

async function main() {
  const wfm = await startWfm();
  const driver = wfm.driver();
  const idDirs: string[] = [];
  const agents: AgentProcess[] = [];
  const devices = ["bench-watch-dev", "bench-poll-dev"];
  try {
    const appId = (await driver.publishFixture("compose-single")).applicationId;
    const identity = async (clientId: string) => {
      const dir = await mkdtemp(join(tmpdir(), `margo-bench-${clientId}-`));
      idDirs.push(dir);
      return wfm.addClient(clientId, dir);
    };
    const endpoints = {
      managementUrl: wfm.managementUrl,
      grpcAddress: wfm.grpcAddress,
      bundleUrl: wfm.bundleUrl,
    };
    const watchAgent = await startAgent({
      wfm: endpoints,
      deviceId: "bench-watch-dev",
      identityDir: await identity("bench-watch"),
      watch: true,
      // Production-like background work for the idle figures: drift every 5 s, poll every 15 s.
      pollMs: 15_000,
      driftCheckMs: 5_000,
    });
    agents.push(watchAgent);

    const idle: Record<string, Sample> = {};
    if (!values["skip-idle"]) {
      process.stderr.write(`idle, 0 deployments (${IDLE_S} s)...\n`);
      await sleep(5_000);
      idle["0 deployments"] = await sampleIdle(watchAgent.pid, IDLE_S);
      const id = await driver.deploy("bench-watch", "bench-watch-dev", appId);
      await waitAll(driver, "bench-watch", [id], "installed", Date.now(), 60_000);
      process.stderr.write(`idle, 1 deployment (${IDLE_S} s)...\n`);
      await sleep(5_000);
      idle["1 deployment"] = await sampleIdle(watchAgent.pid, IDLE_S);
      await driver.undeploy(id);
      await waitAll(driver, "bench-watch", [id], "removed", Date.now(), 60_000);
      process.stderr.write(`idle: ${JSON.stringify(idle)}\n`);
    }

    process.stderr.write("convergence with WatchManifest...\n");
    const rows = await runConvergence(driver, appId, "watch", "bench-watch", "bench-watch-dev");
    await watchAgent.stop();

    const pollAgent = await startAgent({
      wfm: endpoints,
      deviceId: "bench-poll-dev",
      identityDir: await identity("bench-poll"),
      watch: false,
      pollMs: POLL_MS,
    });
    agents.push(pollAgent);
    process.stderr.write(`convergence polling every ${POLL_MS} ms...\n`);
    rows.push(...(await runConvergence(driver, appId, "poll", "bench-poll", "bench-poll-dev")));

    console.log("\nIdle agent (watch on, poll 15 s, drift check 5 s):");
    console.log("| deployments | RSS max (MB) | RSS end (MB) | CPU (% of a core) |");
    console.log("| --- | --- | --- | --- |");
    for (const [k, s] of Object.entries(idle)) {
      console.log(
        `| ${k} | ${s.rssMbMax.toFixed(1)} | ${s.rssMbEnd.toFixed(1)} | ${s.cpuPercent.toFixed(2)} |`,
      );
    }
    console.log(
      `\nDeploy rpc sent -> installed at the WFM (compose-single; poll mode: every ${POLL_MS} ms):`,
    );
    console.log(
      "| mode | deployments | installed in time | first (ms) | p50 (ms) | last (ms) | undeploy -> removed, all (ms) |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      console.log(
        `| ${r.mode} | ${r.n} | ${r.done} | ${r.firstMs} | ${r.p50Ms} | ${r.lastMs} | ${r.undeployMs} |`,
      );
    }
    console.log(JSON.stringify({ idle, rows, pollMs: POLL_MS }));
  } finally {
    if (values["agent-log"]) {
      await writeFile(values["agent-log"], agents.map((a) => a.stderr()).join("\n"));
    }
    for (const a of agents) await a.dispose().catch(() => undefined);
    await wfm.dispose();
    await cleanupDevices(devices);
    for (const d of idDirs) await rm(d, { recursive: true, force: true });
  }
}

await main();
