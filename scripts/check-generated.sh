#!/usr/bin/env bash
# Fails when the checked-in TypeScript under proto/src/gen does not match what the .proto files
# generate, so nobody edits generated code by hand or forgets to regenerate after changing a
# .proto. It lints first (a lint failure is a failure too), regenerates into the tree, then asks
# git whether anything changed, including new untracked files.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v git >/dev/null 2>&1 || ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-generated: not inside a git work tree" >&2
  exit 1
fi

echo "check-generated: buf lint"
(cd proto && npx --no-install buf lint)

echo "check-generated: regenerating proto/src/gen"
npm run --silent generate -w @margo/proto

changes=$(git status --porcelain --untracked-files=all -- proto/src/gen)
if [ -n "$changes" ]; then
  echo "$changes"
  echo "generated code is stale: run npm run generate and commit" >&2
  exit 1
fi
echo "check-generated: proto/src/gen is current"
