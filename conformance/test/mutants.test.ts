/**
 * The mutant matrix: the harness is trusted only if each check catches the violation it names.
 * For every row of MUTANT_MATRIX the self-conformance run judges one deliberately broken
 * reference program with the suite of its side, and the test asserts: the listed checks fail
 * (outcome `fail`, so the harness judged a violation rather than broke), every other failing
 * check is in the mutant's family (a mutant breaks one concern, and so must the checks), and no
 * check errors. The good programs passing everything is the self-conformance test's job.
 *
 * Runs go three at a time (2 cores; each holds a WFM or an agent plus its Compose host), each
 * slot on its own loopback address and Compose host subnet. `MARGO_MUTANTS=a,b` limits the
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

const POOL = 3;
/** Slots take 127.0.<10+slot>.1 and 10.203.<10+slot>.0/30: clear of the default indexes. */
const FIRST_INDEX = 10;

const only = (process.env.MARGO_MUTANTS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const selected = only.length ? MUTANT_MATRIX.filter((m) => only.includes(m.name)) : MUTANT_MATRIX;

type Outcome = { result: SelfConformanceResult } | { setupError: Error };
const outcomes = new Map<string, Outcome>();
let work = "";

/** Runs `cases` through `size` workers; each worker keeps its slot (addresses) for its runs. */
async function pool(
  cases: readonly MutantCase[],
  size: number,
  run: (c: MutantCase, slot: number) => Promise<void>,
): Promise<void> {
  const queue = [...cases];
  await Promise.all(
    Array.from({ length: Math.min(size, queue.length) }, async (_, slot) => {
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

describe("mutant matrix", () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "margo-mutants-"));
    const started = Date.now();
    await pool(selected, POOL, async (c, slot) => {
      const index = FIRST_INDEX + slot;
      try {
        const result = await runSelfConformance({
          outDir: join(work, `${c.side}-${c.name}`),
          suites: [c.suite],
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
    });
    process.stderr.write(
      `mutant matrix: ${selected.length} mutant(s) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }, 1_800_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("names each mutant once, in a family of its own suite", () => {
    const names = MUTANT_MATRIX.map(key);
    expect(new Set(names).size).toBe(names.length);
    for (const c of MUTANT_MATRIX) {
      expect(c.family.startsWith(`${c.suite}.`), `${c.name}: ${c.family}`).toBe(true);
      expect(c.mustFail.length, c.name).toBeGreaterThan(0);
      for (const id of c.mustFail) expect(familyOf(id), `${c.name}: ${id}`).toBe(c.family);
    }
  });

  it.each(selected.map((c) => [`${c.side} ${c.name} (${c.family})`, c] as const))(
    "%s is caught by its family only",
    (_label, c) => {
      const outcome = outcomes.get(key(c));
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
        else if (r.outcome === "fail" && r.family !== c.family)
          problems.push(`outside the family ${c.family}: ${line(r)}`);
      }
      expect(problems, `MARGO_TEST_MUTANT=${c.name} (${c.side})`).toEqual([]);
    },
  );
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
