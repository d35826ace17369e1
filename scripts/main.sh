#!/usr/bin/env bash
# The README's main-job command: the self-conformance run. It brings the environment up, installs
# the locked dependencies, publishes the fixture packages (every valid one pushed and pulled back,
# every broken one rejected by its rule; the full table goes to .margo/publish-fixtures.log), then
# starts the reference WFM and the reference agent and runs every conformance suite against them
# (scripts/self-conformance/run.ts). Reports land in conformance-report/ at the repository root.
# Exit code: the harness's (0 only when every core check passed). The environment stays up
# afterwards; `bash scripts/bootstrap.sh down` stops what the bootstrap started.
#
# Extra arguments go to scripts/self-conformance/run.ts (e.g. --suite wfm, --include wfm.manifest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh up
# shellcheck source=/dev/null
. .margo/env
bash scripts/install-deps.sh

if ! npx tsx scripts/publish-fixtures.ts >.margo/publish-fixtures.log 2>&1; then
  cat .margo/publish-fixtures.log
  echo "main: publishing the fixtures failed (above)" >&2
  exit 1
fi
echo "fixtures: $(tail -n 1 .margo/publish-fixtures.log) (details: .margo/publish-fixtures.log)"

rc=0
npx tsx scripts/self-conformance/run.ts --out conformance-report "$@" || rc=$?
if [ -f conformance-report/report.json ]; then
  echo "reports: conformance-report/report.json, conformance-report/report.xml, conformance-report/report.html"
fi
exit "$rc"
