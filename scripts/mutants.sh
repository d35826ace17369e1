#!/usr/bin/env bash
# The full mutant matrix: every deliberately broken reference WFM and agent judged by its whole
# suite, proving the intended check fails and no check outside the mutant's family does. The
# test command only runs the quick family mode (each mutant against its own family); this is the
# whole-suite proof, over ten minutes here, so CI runs it after the test command (.ci/run).
# Like scripts/test.sh it brings the environment up and stops what it started unless
# MARGO_KEEP_ENV=1. MARGO_MUTANTS=a,b limits it to those mutants. Ends with one line
# "N mutants: N caught only by their family"; exits non-zero unless every mutant was.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
started=$(date +%s)

bash scripts/bootstrap.sh up || { echo "bootstrap failed: see above"; echo "0 mutants: 0 caught only by their family"; exit 1; }
if [ "${MARGO_KEEP_ENV:-0}" != "1" ]; then
  trap 'bash "$root/scripts/bootstrap.sh" down >/dev/null 2>&1 || true' EXIT
fi
# shellcheck source=/dev/null
. "$root/.margo/env"

bash scripts/install-deps.sh || { echo "npm install failed"; echo "0 mutants: 0 caught only by their family"; exit 1; }
# The agent CLI runs this bundle when it is current (what a device would run); a failed bundle
# leaves the CLI on the TypeScript sources, which behave the same, so it is not fatal.
npm run --silent bundle -w @margo/reference-agent || echo "!! bundling the agent failed: the mutants run from the sources"

results=$(mktemp "${TMPDIR:-/tmp}/margo-mutants-XXXXXX.json")
MARGO_MUTANT_MATRIX=full npx vitest run conformance/test/mutants.test.ts \
  --reporter=default --reporter=json --outputFile.json="$results"
vitest_exit=$?

# One line from vitest's JSON report: the full-mode tests are one per mutant.
node --input-type=module - "$results" "$vitest_exit" "$(($(date +%s) - started))" <<'JS'
import { existsSync, readFileSync } from "node:fs";
const [file, vitestExit, seconds] = process.argv.slice(2);
let total = 0;
let caught = 0;
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  for (const r of report.testResults)
    for (const a of r.assertionResults)
      if (a.ancestorTitles.includes("mutant matrix, full mode")) {
        total += 1;
        if (a.status === "passed") caught += 1;
      }
} else {
  console.log("vitest wrote no report");
}
console.log(`mutant matrix wall time: ${seconds}s`);
console.log(`${total} mutants: ${caught} caught only by their family`);
process.exit(vitestExit === "0" && total > 0 && caught === total ? 0 : 1);
JS
status=$?
rm -f "$results"
exit "$status"
