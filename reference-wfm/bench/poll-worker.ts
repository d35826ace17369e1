import { Agent, request } from "node:https";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import type { PeerCertificate } from "node:tls";

/**
 * One load-generator process of bench/manifest-polls.ts. Each simulated client has its own SVID,
 * its own keep-alive TLS connection (an Agent with one socket) and its own phase within the
 * period, so N clients produce N/period requests per second, evenly spread, as a fleet of
 * devices would. Runs as a forked child so its CPU does not count against the server's.
 */

export interface WorkerClient {
  clientId: string;
  certPem: string;
  keyPem: string;
  /** Phase within the period, 0 <= phase < 1, from the client's global index. */
  phase: number;
}

export interface WorkerStart {
  kind: "start";
  host: string;
  port: number;
  wfmSpiffeId: string;
  caPem: string;
  clients: WorkerClient[];
  periodMs: number;
  /** The first period opens the connections; it is reported apart from the steady state. */
  warmupMs: number;
  durationMs: number;
  /** Epoch ms at which every worker starts its schedule, so phases line up across workers. */
  startAt: number;
}

export interface PhaseStats {
  /** Latencies in ms. */
  latencies: number[];
  status: Record<string, number>;
  errors: number;
  /** Requests that had to open a new TLS connection (the server closed the idle one). */
  newConnections: number;
  /**
   * Polls resent once because the reused connection was closed by the server just as the poll
   * went out (the idempotent-request retry every HTTP client does); the retry's time counts.
   */
  staleRetries: number;
  firstError?: string;
}

export interface WorkerResult {
  kind: "result";
  warmup: PhaseStats;
  steady: PhaseStats;
  /** 304 answers per whole second of the steady window (index 0 = first steady second). */
  notModifiedPerSecond: number[];
  /**
   * The generator's own health over the steady window: if its event loop lags, measured
   * latencies include that lag and say nothing about the server.
   */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  cpuPercent: number;
}

const emptyStats = (): PhaseStats => ({
  latencies: [],
  status: {},
  errors: 0,
  newConnections: 0,
  staleRetries: 0,
});

function checkWfm(expected: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const uris = (cert.subjectaltname ?? "")
      .split(/,\s*/)
      .filter((s) => s.startsWith("URI:"))
      .map((s) => s.slice(4));
    return uris.length === 1 && uris[0] === expected
      ? undefined
      : new Error(`server is ${uris.join(",")}, not ${expected}`);
  };
}

async function run(cfg: WorkerStart): Promise<WorkerResult> {
  const warmup = emptyStats();
  const steady = emptyStats();
  const steadyStart = cfg.startAt + cfg.warmupMs;
  const end = steadyStart + cfg.durationMs;
  const perSecond: number[] = new Array(Math.ceil(cfg.durationMs / 1000)).fill(0);
  const checkServerIdentity = checkWfm(cfg.wfmSpiffeId);
  let inFlight = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  let scheduled = cfg.clients.length;

  const poll = (
    agent: Agent,
    etag: string | undefined,
    due: number,
    finish: (etag?: string) => void,
    started?: number,
  ) => {
    const phase = due < steadyStart ? warmup : steady;
    const t0 = started ?? performance.now();
    inFlight++;
    const req = request(
      {
        host: cfg.host,
        port: cfg.port,
        path: "/api/v1/deployments",
        method: "GET",
        agent,
        headers: etag ? { "if-none-match": etag } : {},
      },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () => {
          const ms = performance.now() - t0;
          inFlight--;
          phase.latencies.push(ms);
          if (!req.reusedSocket) phase.newConnections++;
          const code = String(res.statusCode);
          phase.status[code] = (phase.status[code] ?? 0) + 1;
          if (res.statusCode === 304 && phase === steady) {
            const s = Math.floor((Date.now() - steadyStart) / 1000);
            if (s >= 0 && s < perSecond.length) perSecond[s] = (perSecond[s] ?? 0) + 1;
          }
          const next = res.headers.etag;
          finish(typeof next === "string" ? next : etag);
        });
      },
    );
    req.on("error", (e) => {
      inFlight--;
      if (req.reusedSocket && started === undefined) {
        phase.staleRetries++;
        poll(agent, etag, due, finish, t0);
        return;
      }
      phase.errors++;
      phase.firstError ??= e.message;
      finish(etag);
    });
    req.end();
  };

  for (const c of cfg.clients) {
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      cert: c.certPem,
      key: c.keyPem,
      ca: cfg.caPem,
      servername: "localhost",
      checkServerIdentity,
    });
    let etag: string | undefined;
    let due = cfg.startAt + c.phase * cfg.periodMs;
    const step = () => {
      poll(agent, etag, due, (next) => {
        etag = next;
        // A device polls again one period after its slot; slots missed while it waited are
        // skipped, not fired back to back.
        do due += cfg.periodMs;
        while (due < Date.now() - cfg.periodMs / 2);
        if (due >= end) {
          agent.destroy();
          if (--scheduled === 0) resolveDone();
          return;
        }
        setTimeout(step, Math.max(0, due - Date.now()));
      });
    };
    setTimeout(step, Math.max(0, due - Date.now()));
  }
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let cpuAtSteady: NodeJS.CpuUsage | undefined;
  let steadyAt = 0;
  setTimeout(
    () => {
      loop.enable();
      cpuAtSteady = process.cpuUsage();
      steadyAt = performance.now();
    },
    Math.max(0, steadyStart - Date.now()),
  ).unref();
  await done;
  loop.disable();
  const cpu = cpuAtSteady ? process.cpuUsage(cpuAtSteady) : { user: 0, system: 0 };
  const wallUs = (performance.now() - steadyAt) * 1000;
  void inFlight;
  return {
    kind: "result",
    warmup,
    steady,
    notModifiedPerSecond: perSecond,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
    cpuPercent: wallUs > 0 ? ((cpu.user + cpu.system) / wallUs) * 100 : 0,
  };
}

process.on("message", (msg: WorkerStart) => {
  if (msg.kind !== "start") return;
  run(msg).then(
    (result) => process.send?.(result, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.send?.({ kind: "ready" });
