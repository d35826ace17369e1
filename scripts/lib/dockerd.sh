# shellcheck shell=bash
# Makes sure a Docker Engine answers: reuses any daemon that already does, otherwise starts the
# system dockerd in the background and records it. Sourced by scripts/bootstrap.sh.

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

# First pid whose command name is dockerd; reads /proc directly because procps (pgrep) is not
# part of a minimal Debian.
find_dockerd_pid() {
  local d
  for d in /proc/[0-9]*; do
    if [ "$(cat "$d/comm" 2>/dev/null)" = dockerd ]; then
      echo "${d#/proc/}"
      return 0
    fi
  done
  return 0
}

# How long to wait for a freshly started dockerd (first start creates /var/lib/docker).
MARGO_DOCKERD_TIMEOUT=${MARGO_DOCKERD_TIMEOUT:-60}

ensure_dockerd() {
  local t0 log="$MARGO_STATE/dockerd.log" pid i entry
  t0=$(now_us)
  command -v docker >/dev/null 2>&1 || die "no docker client on PATH"
  if docker_answers; then
    if started_alive dockerd; then
      entry=$(started_entry dockerd)
      say "docker: reused (started earlier by bootstrap, pid ${entry%% *})"
    else
      forget_started dockerd
      say "docker: reused (already running, not ours)"
    fi
    return 0
  fi
  forget_started dockerd
  # Only the default local socket is ours to provide; a DOCKER_HOST pointing elsewhere that does
  # not answer is the caller's problem, and starting a daemon would not fix it.
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix:///var/run/docker.sock" ] &&
    [ "$DOCKER_HOST" != "unix:///run/docker.sock" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; not starting a daemon for it"
  fi
  command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed (package docker.io)"
  # A second dockerd in the main network namespace would fight the first over docker0 and
  # iptables, so a daemon that exists but does not answer yet is waited for, never duplicated.
  pid=$(find_dockerd_pid)
  if [ -n "$pid" ]; then
    say "docker: dockerd pid $pid exists but does not answer yet; waiting"
  else
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
      rm -f /var/run/docker.pid # stale pidfile from an unclean stop makes dockerd refuse to start
    fi
    printf '\n=== %s bootstrap starting dockerd\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log"
    # setsid: the daemon must outlive this script and the caller's process group; fd 9 (the
    # bootstrap lock) is closed so the daemon does not hold the lock forever.
    # Address pool: Docker's defaults hold ~30 bridge networks (a /16 each from 172.17-31 plus
    # 192.168/20s) and every Compose project gets its own network, so a device running 50 Compose
    # components ran out ("could not find an available, non-overlapping IPv4 address pool");
    # /24s from one private /16 give 256 networks.
    setsid dockerd --default-address-pool "base=${MARGO_DOCKER_POOL:-10.210.0.0/16},size=24" \
      </dev/null >>"$log" 2>&1 9>&- &
    pid=$!
    record_started dockerd "$pid" .margo/dockerd.log
  fi
  for ((i = 0; i < MARGO_DOCKERD_TIMEOUT * 5; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      forget_started dockerd
      tail -n 20 "$log" >&2 || true
      die "dockerd exited during startup; see .margo/dockerd.log (last lines above)"
    fi
    if docker_answers; then
      say "docker: started in $(elapsed_since "$t0") (pid $pid, log .margo/dockerd.log)"
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$log" >&2 || true
  die "dockerd (pid $pid) did not answer 'docker info' within ${MARGO_DOCKERD_TIMEOUT}s; see .margo/dockerd.log"
}

# The server version, for status and reports.
docker_server_version() {
  local v
  if v=$(timeout 10 docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null); then
    echo "$v"
  else
    echo "not answering"
  fi
}
