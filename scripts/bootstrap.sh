#!/usr/bin/env bash
# Brings up (and takes down) the environment the tests need, on a fresh Debian 12 with Node 20 as
# well as on a machine where parts already run: Docker Engine, Compose, oras, skopeo, a local OCI
# registry on 127.0.0.1:5000 and the locally built fixture images.
#
#   bash scripts/bootstrap.sh up      install what is missing, start what does not answer, build
#                                     and push the fixture images, write .margo/env
#   bash scripts/bootstrap.sh down    stop only what `up` recorded in .margo/started
#   bash scripts/bootstrap.sh status  show what runs and who started it (exit 0 when all is up)
#
# Everything it reuses is left alone; everything it starts is recorded with its pid so `down`
# can never stop a daemon somebody else owns. Runs as root, never reads stdin, sends traffic only
# to loopback and to the Debian archive (when something must be installed).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

MARGO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MARGO_STATE="$MARGO_ROOT/.margo"
MARGO_STARTED="$MARGO_STATE/started"
MARGO_CALLER_PATH=${PATH:-}
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

lib="$MARGO_ROOT/scripts/lib"
# shellcheck source=lib/common.sh
. "$lib/common.sh"
# shellcheck source=lib/packages.sh
. "$lib/packages.sh"
# shellcheck source=lib/dockerd.sh
. "$lib/dockerd.sh"
# shellcheck source=lib/registry.sh
. "$lib/registry.sh"
# shellcheck source=lib/fixture-images.sh
. "$lib/fixture-images.sh"

usage() {
  echo "usage: bash scripts/bootstrap.sh up|down|status" >&2
  exit 2
}

# One bootstrap at a time: parallel test runs would otherwise race to start two daemons.
take_lock() {
  mkdir -p "$MARGO_STATE"
  touch "$MARGO_STARTED"
  exec 9>"$MARGO_STATE/bootstrap.lock"
  if ! flock -n 9; then
    say "bootstrap: waiting for another bootstrap run to finish"
    flock -w 600 9 || die "another bootstrap run held .margo/bootstrap.lock for 10 minutes"
  fi
}

# The file scripts source after `up`. Exported so that processes they start (vitest, tsx) see it.
write_env_file() {
  local f="$MARGO_STATE/env"
  {
    echo "# Written by scripts/bootstrap.sh up; sourced by scripts/test.sh and scripts/main.sh."
    echo "export MARGO_REGISTRY=$MARGO_REGISTRY_ADDR"
    echo "export MARGO_COMPOSE=\"$MARGO_COMPOSE_CMD\""
    echo "export MARGO_COMPOSE_MAJOR=$MARGO_COMPOSE_MAJOR"
    echo "export MARGO_FIXTURE_IMAGE=$MARGO_FIXTURE_IMAGE"
    echo "export MARGO_ORAS=$(command -v oras || true)"
    echo "export TESTCONTAINERS_RYUK_DISABLED=true"
    echo "export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1"
    if [ -n "${DOCKER_HOST:-}" ]; then
      echo "export DOCKER_HOST=$DOCKER_HOST"
    fi
    case ":$MARGO_CALLER_PATH:" in
      *:/usr/local/bin:*) ;;
      *) echo "export PATH=\"/usr/local/bin:\$PATH\"" ;;
    esac
  } >"$f.new"
  if write_if_changed "$f" <"$f.new"; then
    say "env: wrote .margo/env"
  else
    say "env: .margo/env unchanged"
  fi
  rm -f "$f.new"
}

cmd_up() {
  local t0
  t0=$(now_us)
  take_lock
  ensure_apt_packages
  ensure_trixie_tools
  detect_compose
  ensure_dockerd
  ensure_registry
  ensure_busybox_image
  write_env_file
  local oras_v
  oras_v=$(oras version 2>/dev/null | awk '/^Version:/ { print $2 }' || true)
  say "compose: $MARGO_COMPOSE_CMD (v$MARGO_COMPOSE_MAJOR), oras: ${oras_v:-missing}"
  say "bootstrap up: ready in $(elapsed_since "$t0")"
}

cmd_down() {
  local t0
  t0=$(now_us)
  take_lock
  if [ ! -s "$MARGO_STARTED" ]; then
    say "bootstrap down: nothing was started by bootstrap"
    return 0
  fi
  # The registry first: it does not depend on Docker, but a test may still be pushing through it.
  stop_started registry 10
  # dockerd stops its containers (10 s grace each) and its own containerd before it exits.
  stop_started dockerd 60
  say "bootstrap down: done in $(elapsed_since "$t0")"
}

status_line() {
  local name=$1 up=$2 detail=$3 entry owner
  entry=$(started_entry "$name")
  if [ -n "$entry" ] && started_alive "$name"; then
    owner="started by bootstrap (pid ${entry%% *})"
  elif [ -n "$entry" ]; then
    owner="recorded pid ${entry%% *} is gone"
  elif [ "$up" = yes ]; then
    owner="not started by bootstrap"
  else
    owner="-"
  fi
  printf '%-9s %-4s %-34s %s\n' "$name" "$up" "$owner" "$detail"
}

cmd_status() {
  local ok=0 d r img
  mkdir -p "$MARGO_STATE"
  touch "$MARGO_STARTED"
  if docker_answers; then d=yes; else d=no; ok=1; fi
  if [ "$(registry_probe)" = registry ]; then r=yes; else r=no; ok=1; fi
  status_line dockerd "$d" "server $(docker_server_version)"
  status_line registry "$r" "http://$MARGO_REGISTRY_ADDR/v2/"
  img=$(registry_manifest_digest "$MARGO_FIXTURE_IMAGE")
  printf '%-9s %-4s %s\n' fixture "$([ -n "$img" ] && echo yes || echo no)" "$MARGO_FIXTURE_IMAGE ${img:-}"
  if compose_v2_works; then
    printf '%-9s %s\n' compose "docker compose $(docker compose version --short 2>/dev/null)"
  elif command -v docker-compose >/dev/null 2>&1; then
    printf '%-9s %s\n' compose "docker-compose $(docker-compose version --short 2>/dev/null)"
  else
    printf '%-9s %s\n' compose missing
  fi
  printf '%-9s %s\n' oras "$(oras version 2>/dev/null | awk '/^Version:/ { print $2 }' || true)"
  printf '%-9s %s\n' skopeo "$(skopeo --version 2>/dev/null | awk '{ print $3 }' || true)"
  return "$ok"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
