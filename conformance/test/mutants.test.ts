/**
 * The mutant matrix: the harness is trusted only if each check catches the violation it names.
 * For every row of MUTANT_MATRIX the self-conformance run judges one deliberately broken
 * reference program with the suite of its side. Two modes, chosen by MARGO_MUTANT_MATRIX:
 *
 * - `family` (default; part of the README's test command): each mutant is judged by its own
 *   family only (`include: [family.]`). The test asserts the listed checks fail (outcome `fail`,
 *   so the harness judged a violation rather than broke) and nothing in the run errors. This
 *   proves every family catches its mutant in a few minutes, so the test command stays inside
 *   its budget.
 * - `full` (scripts/mutants.sh, run by CI): each mutant is judged by its whole suite, and the
 *   test asserts additionally that no check outside the mutant's family fails: a mutant breaks
 *   one concern, and so must the checks. That needs every check of the suite per mutant (over
 *   ten minutes here), hence its own command.
 *
 * The good programs passing everything is the self-conformance test's job.
 *
 * Runs go MARGO_MUTANT_POOL at a time (default 3; measured on this 2-core machine, see POOL),
 * each slot on its own loopback address and Compose host subnet. `MARGO_MUTANTS=a,b` limits the
 * matrix to those names while working on one mutant.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  REPO_ROOT,
  runSelfConformance,
  type SelfConformanceResult,
} from "../../scripts/self-conformance/run.js";
import type { CheckResult } from "../src/core/types.js";
import { familyOf, MUTANT_MATRIX, type MutantCase } from "./mutants.js";

type Mode = "family" | "full";
const MODES: readonly Mode[] = ["family", "full"];

/** Misspelling the mode must not silently run (or skip) the wrong proof. */
class UnknownMatrixModeError extends Error {
  override readonly name = "UnknownMatrixModeError";
}

const modeSetting = process.env.MARGO_MUTANT_MATRIX?.trim() || "family";
if (!MODES.includes(modeSetting as Mode)) {
  throw new UnknownMatrixModeError(
    `MARGO_MUTANT_MATRIX=${JSON.stringify(modeSetting)}: expected one of ${MODES.join(", ")}`,
  );
}
const MODE = modeSetting as Mode;

/**
 * Three runs at a time beat two for family mode on this machine (2 cores): most of a family run
 * is waiting (process start, TLS, the Compose host, the device's poll interval), not computing.
 */
const POOL = Number(process.env.MARGO_MUTANT_POOL ?? 3);
/** Slots take 127.0.<10+slot>.1 and 10.203.<10+slot>.0/30: clear of the default indexes. */
const FIRST_INDEX = 10;

const only = (process.env.MARGO_MUTANTS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const selected = only.length ? MUTANT_MATRIX.filter((m) => only.includes(m.name)) : MUTANT_MATRIX;

type Outcome = { result: SelfConformanceResult } | { setupError: Error };

/** Runs `cases` through `size` workers; each worker keeps its slot (addresses) for its runs. */
async function pool(
  cases: readonly MutantCase[],
  size: number,
  run: (c: MutantCase, slot: number) => Promise<void>,
): Promise<void> {
  const queue = [...cases];
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(size, queue.length)) }, async (_, slot) => {
      for (let c = queue.shift(); c; c = queue.shift()) await run(c, slot);
    }),
  );
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
    await pool(selected, POOL, async (c, slot) => {
      const index = FIRST_INDEX + slot;
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
        `mutant ${key(c)} (${mode}): ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
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
