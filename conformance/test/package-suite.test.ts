import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Fixture,
  fixturePackageOptions,
  type InvalidFixture,
  listFixtures,
} from "@margo/fixtures";
import { OciClient, publishPackageDir } from "@margo/proto/oci";
import { afterAll, describe, expect, it } from "vitest";
import { CheckFailed, CheckSkipped, type CheckTools, type Outcome } from "../src/core/types.js";
import type { ReportedProblem } from "../src/suites/package/checks.js";
import { packageSuite } from "../src/suites/package/suite.js";

// The package suite's mutant matrix: every valid fixture passes every applicable check, and every
// broken fixture fails exactly the family of the one rule it violates, with that rule named.

const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const RUN = `margo-conformance-test/pkg-${process.pid}-${Date.now().toString(36)}`;
const work = mkdtempSync(join(tmpdir(), "margo-pkg-suite-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Result {
  outcome: Outcome;
  message?: string;
  details?: unknown;
}

/** Runs every package check against the given sources the way the runner does (fail/skip/error). */
async function runSuite(sources: string[]): Promise<Map<string, Result>> {
  const signal = new AbortController().signal;
  const session = await packageSuite.open(
    { sources },
    { workDir: mkdtempSync(join(work, "run-")), log: () => {}, signal },
  );
  const results = new Map<string, Result>();
  for (const check of packageSuite.checks) {
    const t: CheckTools = {
      signal,
      evidence() {},
      note() {},
      fail(message, details) {
        throw new CheckFailed(message, details);
      },
      skip(reason) {
        throw new CheckSkipped(reason);
      },
      expect(cond, message, details) {
        if (!cond) throw new CheckFailed(message, details);
      },
      expectEqual(actual, expected, what) {
        if (JSON.stringify(actual) !== JSON.stringify(expected))
          throw new CheckFailed(`${what}: expected ${JSON.stringify(expected)}`);
      },
    };
    try {
      await check.run(session.ctx, t);
      results.set(check.id, { outcome: "pass" });
    } catch (err) {
      if (err instanceof CheckFailed)
        results.set(check.id, { outcome: "fail", message: err.message, details: err.details });
      else if (err instanceof CheckSkipped)
        results.set(check.id, { outcome: "skip", message: err.message });
      else results.set(check.id, { outcome: "error", message: (err as Error).message });
    }
  }
  await session.close();
  return results;
}

function outcomes(results: Map<string, Result>): Record<string, string> {
  return Object.fromEntries([...results].map(([id, r]) => [id, r.outcome]));
}

/** Copies a fixture and points its component repositories at this run's namespace. */
function relocated(fixture: Fixture): string {
  const dir = join(work, "pkg", fixture.name);
  cpSync(fixture.dir, dir, { recursive: true });
  const path = join(dir, "margo.yaml");
  const text = readFileSync(path, "utf8").replace(
    /oci:\/\/[^/\s]+\/margo-fixtures\//g,
    `oci://${REGISTRY}/${RUN}/${fixture.name}/`,
  );
  writeFileSync(path, text);
  return dir;
}

/** Publishes a fixture (with its publish.yaml deviations) and returns its OCI reference. */
async function publish(fixture: Fixture | InvalidFixture): Promise<string> {
  const dir = relocated(fixture);
  const client = new OciClient({ registry: REGISTRY });
  const options = fixturePackageOptions(fixture);
  const published = await publishPackageDir(client, dir, {
    packageRepo: `${RUN}/${fixture.name}/package`,
    ...("publish" in fixture && fixture.publish ? { overrides: fixture.publish } : {}),
    ...(options.componentArchive ? { componentArchive: options.componentArchive } : {}),
  });
  return `${REGISTRY}/${published.pkg.repository}:${published.pkg.tag}`;
}

/** The check(s) a rule id belongs to: the family a fixture breaking it must fail. */
function familyOf(rule: string): string {
  const prefix = rule.split(".")[0];
  switch (prefix) {
    case "description":
      return "package.description";
    case "package":
      return "package.layout";
    case "archive":
    case "compose":
      return "package.archive";
    case "chart":
      return "package.chart";
    case "oci":
      return "package.oci";
    default:
      throw new Error(`no package family for rule ${rule}`);
  }
}

const { valid, invalid } = listFixtures();

describe("package suite on the valid fixtures", () => {
  it("passes every applicable check on the fixture folders (nothing fails or errors)", async () => {
    const results = await runSuite(valid.map((f) => f.dir));
    const o = outcomes(results);
    expect(
      Object.values(o).filter((x) => x === "fail" || x === "error"),
      JSON.stringify(o),
    ).toEqual([]);
    expect(o["package.description.rules"]).toBe("pass");
    expect(o["package.layout.rules"]).toBe("pass");
    expect(o["package.archive.rules"]).toBe("pass");
    expect(o["package.chart.rules"]).toBe("pass");
    // Folders are not published: the OCI checks say so instead of passing vacuously.
    expect(o["package.oci.package-manifest"]).toBe("skip");
  });

  it("judges a .tar.gz archive of a package folder like the folder", async () => {
    const fixture = valid.find((f) => f.name === "compose-multi") as Fixture;
    const archive = join(work, "compose-multi.tar.gz");
    execFileSync("tar", ["-czf", archive, "-C", fixture.dir, "."]);
    const o = outcomes(await runSuite([archive]));
    expect(o["package.description.rules"]).toBe("pass");
    expect(o["package.archive.rules"]).toBe("pass");
    expect(o["package.chart.rules"]).toBe("skip");
  });

  it("passes the OCI checks on every valid fixture published to the registry", async () => {
    const refs = await Promise.all(valid.map((f) => publish(f)));
    const o = outcomes(await runSuite(refs));
    expect(o).toEqual({
      "package.description.rules": "pass",
      "package.layout.rules": "pass",
      "package.archive.rules": "pass",
      "package.chart.rules": "pass",
      "package.oci.package-manifest": "pass",
      "package.oci.tag-version": "pass",
      "package.oci.compose-component": "pass",
      "package.oci.helm-chart": "pass",
    });
  });

  it("errors (never fails) when an OCI source does not exist", async () => {
    const o = outcomes(await runSuite([`${REGISTRY}/${RUN}/no-such-package:1.0.0`]));
    expect(o["package.description.rules"]).toBe("error");
    expect(Object.values(o)).not.toContain("fail");
  });
});

describe("package suite mutant matrix: each broken fixture fails only its family", () => {
  for (const fixture of invalid) {
    const family = familyOf(fixture.expect.rule);
    it(`${fixture.name} fails ${family} with ${fixture.expect.rule}`, async () => {
      // Hostile archives cannot live in git as files and OCI deviations exist only when
      // published: both go through the registry, as a vendor's package would.
      const viaOci = fixture.expect.stage === "oci" || fixture.archive !== undefined;
      const source = viaOci ? await publish(fixture) : fixture.dir;
      const results = await runSuite([source]);
      const o = outcomes(results);
      const failing = Object.entries(o).filter(([, x]) => x === "fail" || x === "error");
      expect(failing.length, JSON.stringify(o)).toBeGreaterThan(0);
      for (const [id, x] of failing) {
        expect(x, `${id}: ${results.get(id)?.message}`).toBe("fail");
        expect(id.startsWith(`${family}.`), `${id} failed outside ${family}`).toBe(true);
      }
      const rules = failing.flatMap(([id]) =>
        ((results.get(id)?.details as ReportedProblem[] | undefined) ?? []).map((p) => p.rule),
      );
      expect(rules).toContain(fixture.expect.rule);
    });
  }
});
