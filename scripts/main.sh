#!/usr/bin/env bash
# The README's main-job command. Today (foundation issue) the main job validates every fixture
# package and publishes the valid ones to the local OCI registry, printing what was pushed; later
# issues grow it into the full self-conformance run. The environment stays up afterwards so what
# was pushed can be inspected; `bash scripts/bootstrap.sh down` stops what the bootstrap started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh up
# shellcheck source=/dev/null
. .margo/env
bash scripts/install-deps.sh
exec npx tsx scripts/publish-fixtures.ts "$@"
