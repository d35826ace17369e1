/**
 * The mutant matrix: the harness is trusted only if each check catches the violation it names.
 * For every row of MUTANT_MATRIX the self-conformance run judges one deliberately broken
 * reference program with the suite of its side. Two modes, chosen by MARGO_MUTANT_MATRIX:
 *
 * - unset (the README's test command): the matrix is skipped with that reason printed; its
 *   23 runs (3-10 minutes here even in family mode) would push the test command past its
 *   15-minute budget. CI runs `scripts/mutants.sh` right after the test command.
 * - `family`: each mutant is judged by its own family only (`include: [family.]`). The test
 *   asserts the listed checks fail (outcome `fail`, so the harness judged a violation rather than
 *   broke) and nothing in the run errors: the quick proof while working on checks.
 * - `full` (scripts/mutants.sh, run by CI): each mutant is judged by its whole suite, and the
 *   test asserts additionally that no check outside the mutant's family fails: a mutant breaks
 *   one concern, and so must the checks. That needs every check of the suite per mutant (over
 *   ten minutes here), hence its own command.
 *
 * The good programs passing everything is the self-conformance test's job.
 *
 * Runs go MARGO_MUTANT_POOL at a time (measured on this 2-core machine, see POOL), each worker
 * on a loopback address and Compose host subnet it claimed (see INDEXES). `MARGO_MUTANTS=a,b` limits the
 * matrix to those names while working on one mutant.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  REPO_ROOT,
  runSelfConformance,
  type SelfConformanceResult,
} from "../../scripts/self-conformance/run.js";
import { loadCatalogue } from "../src/catalogue/index.js";
import type { CheckResult } from "../src/core/types.js";
import { listNetns } from "../src/runtime/compose-host.js";
import { allChecks } from "../src/suites/all.js";
import { familyOf, MUTANT_MATRIX, type MutantCase } from "./mutants.js";

type Mode = "family" | "full";
const MODES: readonly Mode[] = ["family", "full"];

/** Misspelling the mode must not silently run (or skip) the wrong proof. */
class UnknownMatrixModeError extends Error {
  override readonly name = "UnknownMatrixModeError";
}

const modeSetting = process.env.MARGO_MUTANT_MATRIX?.trim() || "off";
if (modeSetting !== "off" && !MODES.includes(modeSetting as Mode)) {
  throw new UnknownMatrixModeError(
    `MARGO_MUTANT_MATRIX=${JSON.stringify(modeSetting)}: expected one of ${MODES.join(", ")}`,
  );
}
const MODE = modeSetting as Mode | "off";

/**
 * Three runs at a time by default: most of a family run waits (process start, TLS, the Compose
 * host, the device's poll interval) rather than computes. Measured on this 2-core machine while
 * other work loaded it (load 12-18): pool 3 took 9.4-10 min for all 23, pool 2 8.6 min but with
 * ten device runs failing fast, so not a clean comparison; MARGO_MUTANT_POOL overrides.
 */
const POOL = Number(process.env.MARGO_MUTANT_POOL ?? 3);
/**
 * Each worker claims one index in 10..19 for its runs: its WFM takes 127.0.<index>.1 and its
 * Compose host 10.203.<index>.0/30, clear of the self-conformance defaults (20..219) and the
 * harness default (1). Claimed, not fixed: several engineers (or a CI retry) may run the matrix
 * at once, and two runs on one index break each other's set-up.
 */
const INDEXES = Array.from({ length: 10 }, (_, k) => 10 + k);
/** Port whose exclusive bind on 127.0.<index>.1 is the claim: atomic, released when we die. */
const CLAIM_PORT = 1;

const only = (process.env.MARGO_MUTANTS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
/**
 * Device runs first: they are the long ones (a Compose host, the agent's poll interval), and a
 * pool that starts the longest jobs first does not end waiting on one straggler.
 */
const selected = (
  only.length ? MUTANT_MATRIX.filter((m) => only.includes(m.name)) : [...MUTANT_MATRIX]
).sort((a, b) => Number(a.suite === "wfm") - Number(b.suite === "wfm"));

type Outcome = { result: SelfConformanceResult } | { setupError: Error };

/** No index in 10..19 could be claimed for long: other matrices or stale runs hold them all. */
class NoFreeIndexError extends Error {
  override readonly name = "NoFreeIndexError";
}

interface IndexClaim {
  index: number;
  release(): Promise<void>;
}

function listenExclusive(host: string, port: number): Promise<Server | undefined> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(undefined));
    s.listen({ host, port, exclusive: true }, () => res(s));
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((res) => s.close(() => res()));
}

/**
 * The first index nobody holds: our claim port binds, no live Compose host has it (a run of
 * the harness outside this matrix) and its WFM port is free.
 */
async function claimIndex(): Promise<IndexClaim | undefined> {
  const netns = await listNetns();
  for (const index of INDEXES) {
    const host = `127.0.${index}.1`;
    const claim = await listenExclusive(host, CLAIM_PORT);
    if (!claim) continue;
    const wfmPort = netns.some((n) => n.startsWith(`margo-ch-${index}-`))
      ? undefined
      : await listenExclusive(host, 443);
    if (!wfmPort) {
      await closeServer(claim);
      continue;
    }
    await closeServer(wfmPort);
    return { index, release: () => closeServer(claim) };
  }
  return undefined;
}

/**
 * Runs `cases` through up to `size` workers, each on an index it claimed for all its runs.
 * Fewer free indexes mean fewer workers (slower, still correct); none for a minute is an error.
 */
async function pool(
  cases: readonly MutantCase[],
  size: number,
  run: (c: MutantCase, index: number) => Promise<void>,
): Promise<void> {
  const queue = [...cases];
  const claims: IndexClaim[] = [];
  try {
    const deadline = Date.now() + 60_000;
    while (claims.length < Math.max(1, Math.min(size, queue.length))) {
      const claim = await claimIndex();
      if (claim) claims.push(claim);
      else if (claims.length > 0) break;
      else if (Date.now() > deadline)
        throw new NoFreeIndexError(
          `no free index in ${INDEXES[0]}..${INDEXES.at(-1)} for a minute (127.0.<i>.1:${CLAIM_PORT} or :443 taken, or a Compose host margo-ch-<i>-* alive)`,
        );
      else await new Promise((r) => setTimeout(r, 2_000));
    }
    await Promise.all(
      claims.map(async ({ index }) => {
        for (let c = queue.shift(); c; c = queue.shift()) await run(c, index);
      }),
    );
  } finally {
    await Promise.all(claims.map((c) => c.release()));
  }
}

function key(c: MutantCase): string {
  return `${c.side}:${c.name}`;
}

function line(r: CheckResult): string {
  return `${r.id} [${r.family}] ${r.outcome}${r.message ? `: ${r.message}` : ""}`;
}

/** Runs every selected mutant once in `mode`; the outcomes are read by the per-mutant tests. */
function runMatrix(mode: Mode): Map<string, Outcome> {
  const outcomes = new Map<string, Outcome>();
  let work = "";
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `margo-mutants-${mode}-`));
    const started = Date.now();
    await pool(selected, POOL, async (c, index) => {
      const t0 = Date.now();
      try {
        const result = await runSelfConformance({
          outDir: join(work, `${c.side}-${c.name}`),
          suites: [c.suite],
          // The trailing dot keeps a family from selecting a longer one that shares its prefix.
          ...(mode === "family" ? { include: [`${c.family}.`] } : {}),
          ...(c.side === "wfm" ? { wfmMutant: c.name } : { agentMutant: c.name }),
          loopbackIndex: index,
          composeHostIndex: index,
          quiet: true,
          log: () => {},
        });
        outcomes.set(key(c), { result });
      } catch (e) {
        outcomes.set(key(c), { setupError: e as Error });
      }
      process.stderr.write(
        `mutant ${key(c)} (${mode}, index ${index}): ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
      );
    });
    process.stderr.write(
      `mutant matrix (${mode}, pool ${POOL}): ${selected.length} mutant(s) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }, 1_800_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });
  return outcomes;
}

/** What is wrong with one mutant's run in `mode`; empty when the matrix holds for it. */
function problemsOf(c: MutantCase, outcome: Outcome | undefined, mode: Mode): string[] {
  if (!outcome) throw new Error(`no run recorded for ${key(c)}`);
  if ("setupError" in outcome) throw outcome.setupError;
  const { report } = outcome.result;
  const byId = new Map(report.checks.map((r) => [r.id, r]));
  const problems: string[] = [];
  for (const id of c.mustFail) {
    const r = byId.get(id);
    if (!r) problems.push(`${id}: not in the report (renamed? the table names it)`);
    else if (r.outcome !== "fail")
      problems.push(`${id} should fail (${c.requirement}) but is ${line(r)}`);
  }
  for (const r of report.checks) {
    if (r.outcome === "error") problems.push(`harness error: ${line(r)}`);
    else if (mode === "family" && r.family !== c.family)
      problems.push(`ran although only ${c.family} was selected: ${line(r)}`);
    else if (mode === "full" && r.outcome === "fail" && r.family !== c.family)
      problems.push(`outside the family ${c.family}: ${line(r)}`);
  }
  return problems;
}

function skipReason(mode: Mode): string {
  if (MODE === "off") {
    return `MARGO_MUTANT_MATRIX unset: the ${mode} mode is skipped (the matrix is scripts/mutants.sh, which CI runs after the test command; set MARGO_MUTANT_MATRIX=family|full to run it here)`;
  }
  return `MARGO_MUTANT_MATRIX=${MODE}: the ${mode} mode is skipped (${
    mode === "full"
      ? "run scripts/mutants.sh for the whole-suite proof"
      : "the full mode proves more, including this"
  })`;
}

const matrixModes: ReadonlyArray<{ mode: Mode; title: string }> = [
  { mode: "family", title: "is caught by its family" },
  { mode: "full", title: "is caught by its family only, in the whole suite" },
];

for (const { mode, title } of matrixModes) {
  const active = mode === MODE;
  if (!active) process.stderr.write(`${skipReason(mode)}\n`);
  describe.runIf(active)(
    `mutant matrix, ${mode} mode${active ? "" : ` (${skipReason(mode)})`}`,
    () => {
      const outcomes = runMatrix(mode);
      it.each(selected.map((c) => [`${c.side} ${c.name} (${c.family})`, c] as const))(
        `%s ${title}`,
        (_label, c) => {
          const problems = problemsOf(c, outcomes.get(key(c)), mode);
          expect(problems, `MARGO_TEST_MUTANT=${c.name} (${c.side}), ${mode} mode`).toEqual([]);
        },
      );
    },
  );
}

describe("mutant table", () => {
  it("names each mutant once, in a family of its own suite", () => {
    const names = MUTANT_MATRIX.map(key);
    expect(new Set(names).size).toBe(names.length);
    for (const c of MUTANT_MATRIX) {
      expect(c.family.startsWith(`${c.suite}.`), `${c.name}: ${c.family}`).toBe(true);
      expect(c.mustFail.length, c.name).toBeGreaterThan(0);
      for (const id of c.mustFail) expect(familyOf(id), `${c.name}: ${id}`).toBe(c.family);
    }
  });

  it("names a catalogue requirement per mutant, cited by every check that must catch it", async () => {
    const catalogue = new Set((await loadCatalogue()).map((r) => r.id));
    const checks = new Map(allChecks().map((c) => [c.id, c]));
    const problems: string[] = [];
    for (const c of MUTANT_MATRIX) {
      if (!catalogue.has(c.requirement))
        problems.push(`${c.name}: ${c.requirement} not in the catalogue`);
      for (const id of c.mustFail) {
        const check = checks.get(id);
        if (!check) problems.push(`${c.name}: ${id} is not a check`);
        else if (!check.requirements.includes(c.requirement))
          problems.push(`${c.name}: ${id} does not cite ${c.requirement}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("MARGO_TEST_MUTANT", () => {
  const bins = {
    wfm: { bin: join(REPO_ROOT, "reference-wfm/bin/margo-wfm"), args: ["--help"] },
    agent: { bin: join(REPO_ROOT, "reference-agent/bin/margo-agent"), args: ["--help"] },
  } as const;

  it.each(["wfm", "agent"] as const)(
    "an unknown name makes margo-%s refuse to start, listing exactly the table's mutants",
    (side) => {
      const { bin, args } = bins[side];
      const run = spawnSync(bin, args, {
        env: { ...process.env, MARGO_TEST_MUTANT: "no-such-mutant" },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(/refusing to start: MARGO_TEST_MUTANT="no-such-mutant"/);
      const known = /known: (.*)$/m.exec(run.stderr)?.[1]?.split(", ") ?? [];
      const table = MUTANT_MATRIX.filter((m) => m.side === side).map((m) => m.name);
      expect([...known].sort()).toEqual([...table].sort());

      // The same program starts normally with a known name: the refusal is about the name.
      const ok = spawnSync(bin, args, {
        env: { ...process.env, MARGO_TEST_MUTANT: table[0] },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(ok.status, ok.stderr).toBe(0);
    },
  );
});
