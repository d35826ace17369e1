/**
 * The main job of the foundation issue: validate every fixture package, publish the valid ones
 * (components to the repositories their margo.yaml names, then the package to
 * margo-fixtures/<app-id>/package:<version>), pull everything back verifying every digest, and
 * show that each broken fixture is rejected by its named rule. Exits non-zero on any unexpected
 * result so CI and `npm run main` notice.
 *
 * Usage: npx tsx scripts/publish-fixtures.ts [--json]
 */
import {
  type Fixture,
  fixturePackageOptions,
  type InvalidFixture,
  listFixtures,
} from "@margo/fixtures";
import type { Problem } from "@margo/proto";
import {
  OciClient,
  type PublishedPackage,
  type PushedArtifact,
  publishPackageDir,
  verifyPublished,
} from "@margo/proto/oci";
import { validatePackageDir } from "@margo/proto/package";

interface PushedRow {
  fixture: string;
  reference: string;
  artifactType: string;
  digest: string;
  size: number;
}

interface RejectedRow {
  fixture: string;
  stage: string;
  expected: string;
  /** Error rules that fired. */
  fired: string[];
  ok: boolean;
}

interface Failure {
  fixture: string;
  message: string;
  problems?: Problem[];
}

const registry = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const json = process.argv.includes("--json");
const client = new OciClient({ registry });

const errors = (ps: readonly Problem[]) => ps.filter((p) => p.severity === "error");
const errorRules = (ps: readonly Problem[]) => [...new Set(errors(ps).map((p) => p.rule))];

function row(fixture: string, a: PushedArtifact): PushedRow {
  return {
    fixture,
    reference: `${registry}/${a.repository}:${a.tag}`,
    artifactType: a.artifactType ?? (a.manifest.config.mediaType || "-"),
    digest: a.digest,
    size: a.contentSize + a.manifestSize,
  };
}

function rowsOf(fixture: string, published: PublishedPackage): PushedRow[] {
  return [...published.components.map((c) => row(fixture, c.pushed)), row(fixture, published.pkg)];
}

async function publishValid(f: Fixture, pushed: PushedRow[], failures: Failure[]): Promise<void> {
  const checked = await validatePackageDir(f.dir, fixturePackageOptions(f));
  if (errors(checked.problems).length > 0) {
    failures.push({
      fixture: f.name,
      message: "valid fixture fails validation",
      problems: errors(checked.problems),
    });
    return;
  }
  const appId = checked.doc?.id ?? f.name;
  const published = await publishPackageDir(client, f.dir, {
    packageRepo: `margo-fixtures/${appId}/package`,
  });
  const problems = await verifyPublished(client, published);
  if (errors(problems).length > 0) {
    failures.push({
      fixture: f.name,
      message: "pulled back with problems",
      problems: errors(problems),
    });
  }
  pushed.push(...rowsOf(f.name, published));
}

async function checkBroken(f: InvalidFixture): Promise<RejectedRow> {
  let problems: Problem[];
  if (f.expect.stage === "oci") {
    // Published under a separate namespace so clients of margo-fixtures/ only ever see good packages.
    const ns = `margo-fixtures-rejected/${f.name}`;
    const published = await publishPackageDir(client, f.dir, {
      packageRepo: `${ns}/package`,
      mapRepository: (path) => `${ns}/${path}`,
      ...(f.publish ? { overrides: f.publish } : {}),
    });
    problems = await verifyPublished(client, published);
  } else {
    problems = (await validatePackageDir(f.dir, fixturePackageOptions(f))).problems;
  }
  const fired = errorRules(problems);
  return {
    fixture: f.name,
    stage: f.expect.stage,
    expected: f.expect.rule,
    fired,
    ok: fired.includes(f.expect.rule),
  };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

async function main(): Promise<number> {
  const started = Date.now();
  try {
    await client.ping();
  } catch (e) {
    console.error(
      `no OCI registry on ${registry}: ${(e as Error).message}\nrun \`bash scripts/bootstrap.sh up\` first`,
    );
    return 2;
  }
  const { valid, invalid } = listFixtures();
  const pushed: PushedRow[] = [];
  const rejected: RejectedRow[] = [];
  const failures: Failure[] = [];
  for (const f of valid) {
    try {
      await publishValid(f, pushed, failures);
    } catch (e) {
      failures.push({ fixture: f.name, message: (e as Error).message });
    }
  }
  for (const f of invalid) {
    try {
      const r = await checkBroken(f);
      rejected.push(r);
      if (!r.ok)
        failures.push({
          fixture: f.name,
          message: `expected ${r.expected}, got [${r.fired.join(", ")}]`,
        });
    } catch (e) {
      failures.push({ fixture: f.name, message: (e as Error).message });
    }
  }
  const seconds = (Date.now() - started) / 1000;
  if (json) {
    console.log(JSON.stringify({ registry, pushed, rejected, failures, seconds }, null, 2));
  } else {
    console.log(`Published to ${registry}:\n`);
    console.log(
      table(
        ["fixture", "repository:tag", "artifactType", "manifest digest", "size"],
        pushed.map((r) => [r.fixture, r.reference, r.artifactType, r.digest, String(r.size)]),
      ),
    );
    console.log(`\nBroken fixtures (each must be rejected by its rule):\n`);
    console.log(
      table(
        ["fixture", "stage", "rule", "result"],
        rejected.map((r) => [
          r.fixture,
          r.stage,
          r.expected,
          r.ok ? "rejected" : `NOT REJECTED (fired: ${r.fired.join(", ") || "none"})`,
        ]),
      ),
    );
    for (const f of failures) {
      console.log(`\nUNEXPECTED ${f.fixture}: ${f.message}`);
      for (const p of f.problems ?? [])
        console.log(`  ${p.rule} at ${p.pointer || "/"}: ${p.message}`);
    }
    console.log(
      `\n${pushed.length} artifacts pushed from ${valid.length} packages, ${rejected.filter((r) => r.ok).length}/${invalid.length} broken fixtures rejected, ${failures.length} unexpected, ${seconds.toFixed(1)} s`,
    );
  }
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = await main();
