#!/usr/bin/env bash
# The README's test command. On a fresh Debian 12 machine with Node 20 it installs and starts
# everything the tests need (scripts/bootstrap.sh), then runs the format check, the linter, the
# typechecker, the generated-code diff check and every test, and ends with one
# "N passed, N failed" line. It keeps going after a failing step so one run shows everything.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)

bash scripts/bootstrap.sh up || { echo "bootstrap failed: see above"; echo "0 passed, 1 failed"; exit 1; }
if [ "${MARGO_KEEP_ENV:-0}" != "1" ]; then
  trap 'bash "$root/scripts/bootstrap.sh" down >/dev/null 2>&1 || true' EXIT
fi
# shellcheck source=/dev/null
. "$root/.margo/env"

bash scripts/install-deps.sh || { echo "npm install failed"; echo "0 passed, 1 failed"; exit 1; }

static_passed=0
static_failed=0
step() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    static_passed=$((static_passed + 1))
  else
    echo "!! $name failed"
    static_failed=$((static_failed + 1))
  fi
}
step "format check (biome)" npx biome format .
step "lint (biome)" npx biome lint --error-on-warnings .
step "typecheck (tsc)" npx tsc -p tsconfig.json
step "generated code is current" bash scripts/check-generated.sh
# The acceptance tests run bin/margo-agent, which runs this bundle (what a device would run); a
# failed bundle leaves the shim on the TypeScript sources, so the tests still say what is wrong.
step "bundle the agent (esbuild)" npm run --silent bundle -w @margo/reference-agent

echo "== tests (vitest)"
rm -f .vitest-results.json
npx vitest run --reporter=default --reporter=json --outputFile.json=.vitest-results.json
vitest_exit=$?
node scripts/summarize-tests.mjs .vitest-results.json "$static_passed" "$static_failed" \
  "$(($(date +%s) - started))" "$vitest_exit"
