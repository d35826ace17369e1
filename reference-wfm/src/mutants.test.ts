import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MUTANT_ENV, mutantBanner, mutantFeatures, mutantFromEnv, WFM_MUTANTS } from "./mutants.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "../bin/margo-wfm");

describe("margo-wfm mutants are never silent", () => {
  it("names every mutant with its broken requirement in the banner and the Info feature", () => {
    for (const [name, spec] of Object.entries(WFM_MUTANTS)) {
      const n = mutantFromEnv({ [MUTANT_ENV]: name });
      expect(mutantBanner(n)).toBe(`MUTANT ACTIVE: ${name} breaks ${spec.requirement}; test-only`);
      expect(mutantFeatures(n)).toEqual([`mutant:${name}`]);
    }
  });

  it("says nothing for the reference (variable unset or empty)", () => {
    for (const env of [{}, { [MUTANT_ENV]: "" }]) {
      expect(mutantBanner(mutantFromEnv(env))).toBeUndefined();
      expect(mutantFeatures(mutantFromEnv(env))).toEqual([]);
    }
  });

  it("the CLI prints the banner once on stderr with a known mutant, and none without", () => {
    const base = { ...process.env };
    delete base[MUTANT_ENV];
    const on = spawnSync(BIN, ["--help"], {
      env: { ...base, [MUTANT_ENV]: "tls12-default" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(on.status, on.stderr).toBe(0);
    const lines = on.stderr.split("\n").filter((l) => l.includes("MUTANT ACTIVE"));
    expect(lines).toEqual(["margo-wfm: MUTANT ACTIVE: tls12-default breaks wfm-002; test-only"]);
    const off = spawnSync(BIN, ["--help"], { env: base, encoding: "utf8", timeout: 30_000 });
    expect(off.status, off.stderr).toBe(0);
    expect(off.stderr).not.toContain("MUTANT");
  });
});
