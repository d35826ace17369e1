/**
 * Benchmark of the harness itself: wall time of the full self-conformance run (issue 5 target:
 * under 90 s on this machine). Each run is the real thing (reference WFM, reference agent on a
 * fresh Compose host, all suites in parallel); per suite it reports the span from its first
 * check's start to its last check's end, which is what the suites cost when they overlap.
 *
 * Usage: npx tsx conformance/bench/self-conformance.ts [--runs N] [--json]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSelfConformance } from "../../scripts/self-conformance/run.js";
import type { RunReport, SuiteName } from "../src/core/types.js";

interface RunFigures {
  run: number;
  exitCode: number;
  /** Whole run: WFM start, harness (suite set-up, checks, reports), teardown. */
  totalMs: number;
  /** The harness's own duration as it reports it. */
  harnessMs: number;
  /** Around the harness: fixture check + reference WFM start, and its stop. */
  setupMs: number;
  teardownMs: number;
  suites: Partial<Record<SuiteName, { checks: number; spanMs: number; sumMs: number }>>;
  summary: RunReport["summary"];
}

function suiteFigures(report: RunReport): RunFigures["suites"] {
  const out: RunFigures["suites"] = {};
  for (const suite of ["wfm", "device", "package"] as const) {
    const checks = report.checks.filter((c) => c.suite === suite);
    if (checks.length === 0) continue;
    const starts = checks.map((c) => Date.parse(c.startedAt));
    const ends = checks.map((c) => Date.parse(c.startedAt) + c.durationMs);
    out[suite] = {
      checks: checks.length,
      spanMs: Math.max(...ends) - Math.min(...starts),
      sumMs: checks.reduce((a, c) => a + c.durationMs, 0),
    };
  }
  return out;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const runsArg = argv.indexOf("--runs");
  const runs = runsArg >= 0 ? Number(argv[runsArg + 1]) : 1;
  const json = argv.includes("--json");
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write("--runs needs a positive integer\n");
    return 2;
  }
  const figures: RunFigures[] = [];
  for (let i = 1; i <= runs; i++) {
    const outDir = await mkdtemp(join(tmpdir(), "margo-self-bench-"));
    try {
      const r = await runSelfConformance({ outDir, quiet: true, log: () => {} });
      figures.push({
        run: i,
        exitCode: r.exitCode,
        totalMs: r.durationMs,
        harnessMs: r.report.durationMs,
        setupMs: r.phasesMs.setup,
        teardownMs: r.phasesMs.teardown,
        suites: suiteFigures(r.report),
        summary: r.report.summary,
      });
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ runs: figures })}\n`);
  } else {
    const s = (ms: number | undefined) => (ms === undefined ? "-" : (ms / 1000).toFixed(1));
    process.stdout.write(
      "run  exit  total s  setup s  harness s  teardown s  wfm span s  device span s  package span s  pass/fail/error/skip\n",
    );
    for (const f of figures) {
      const { pass, fail, error, skip } = f.summary;
      process.stdout.write(
        `${String(f.run).padEnd(5)}${String(f.exitCode).padEnd(6)}${s(f.totalMs).padEnd(9)}${s(f.setupMs).padEnd(9)}${s(f.harnessMs).padEnd(11)}${s(f.teardownMs).padEnd(12)}${s(f.suites.wfm?.spanMs).padEnd(12)}${s(f.suites.device?.spanMs).padEnd(15)}${s(f.suites.package?.spanMs).padEnd(16)}${pass}/${fail}/${error}/${skip}\n`,
      );
    }
    const totals = figures.map((f) => f.totalMs).sort((a, b) => a - b);
    const median = totals[Math.floor(totals.length / 2)] ?? 0;
    process.stdout.write(
      `median total ${s(median)} s over ${figures.length} run(s); target < 90 s\n`,
    );
  }
  return figures.every((f) => f.exitCode === 0) ? 0 : 1;
}

process.exitCode = await main();
