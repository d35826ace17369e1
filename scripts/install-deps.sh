#!/usr/bin/env bash
# Installs the npm dependencies exactly as locked, and skips the work when node_modules already
# matches the lock (the marker holds the lock's hash).
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f node_modules/.margo-lock-sha256 ] && [ "$(cat node_modules/.margo-lock-sha256)" = "$want" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > node_modules/.margo-lock-sha256
