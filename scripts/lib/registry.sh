# shellcheck shell=bash
# Makes sure an OCI registry answers on 127.0.0.1:5000: reuses any registry already there,
# otherwise starts Debian's docker-registry (distribution 2.8) with filesystem storage under
# .margo/registry/data and deletes enabled. Sourced by scripts/bootstrap.sh.

# Overridable only so scripts/test/bootstrap.test.ts can exercise a private copy side by side
# with the shared registry; it must stay on loopback (nothing here may listen elsewhere).
MARGO_REGISTRY_ADDR=${MARGO_BOOTSTRAP_REGISTRY_ADDR:-127.0.0.1:5000}
case $MARGO_REGISTRY_ADDR in
  127.*:[0-9]*) ;;
  *) die "MARGO_BOOTSTRAP_REGISTRY_ADDR must be a 127.0.0.0/8 address with a port, got $MARGO_REGISTRY_ADDR" ;;
esac

# Prints "registry" when the address speaks the distribution API (200 or 401 on /v2/ with the
# API-version header), "other" when something else holds the port, "none" when it is free.
registry_probe() {
  local headers code
  headers=$(curl -s -m 3 -o /dev/null -D - "http://$MARGO_REGISTRY_ADDR/v2/" 2>/dev/null || true)
  code=$(printf '%s' "$headers" | awk 'NR == 1 { print $2 }')
  if { [ "$code" = 200 ] || [ "$code" = 401 ]; } &&
    printf '%s' "$headers" | grep -qi '^docker-distribution-api-version: *registry/2'; then
    echo registry
  elif [ -n "$code" ] || [ -n "$(ss -Hltn "sport = :${MARGO_REGISTRY_ADDR##*:}" 2>/dev/null)" ]; then
    echo other
  else
    echo none
  fi
}

registry_config() {
  cat <<YAML
# Written by scripts/bootstrap.sh: the local OCI registry the tests push to and pull from.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $MARGO_STATE/registry/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $MARGO_REGISTRY_ADDR
YAML
}

ensure_registry() {
  local t0 state pid i entry log="$MARGO_STATE/registry.log" cfg="$MARGO_STATE/registry/config.yml"
  t0=$(now_us)
  state=$(registry_probe)
  case $state in
    registry)
      if started_alive registry; then
        entry=$(started_entry registry)
        say "registry: reused (started earlier by bootstrap, pid ${entry%% *})"
      else
        forget_started registry
        say "registry: reused (already running at $MARGO_REGISTRY_ADDR, not ours)"
      fi
      return 0
      ;;
    other)
      ss -Hltnp "sport = :${MARGO_REGISTRY_ADDR##*:}" >&2 2>/dev/null || true
      die "something that is not an OCI registry holds $MARGO_REGISTRY_ADDR (GET /v2/ gave no registry answer); stop it or free the port"
      ;;
  esac
  forget_started registry
  command -v docker-registry >/dev/null 2>&1 || die "docker-registry is not installed (package docker-registry)"
  mkdir -p "$MARGO_STATE/registry/data"
  registry_config | write_if_changed "$cfg" || true
  printf '\n=== %s bootstrap starting docker-registry\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log"
  setsid docker-registry serve "$cfg" </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  record_started registry "$pid" .margo/registry.log
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      forget_started registry
      tail -n 20 "$log" >&2 || true
      die "docker-registry exited during startup; see .margo/registry.log (last lines above)"
    fi
    if [ "$(registry_probe)" = registry ]; then
      say "registry: started in $(elapsed_since "$t0") (pid $pid, $MARGO_REGISTRY_ADDR, data .margo/registry/data)"
      return 0
    fi
    sleep 0.1
  done
  die "docker-registry (pid $pid) did not answer on $MARGO_REGISTRY_ADDR within 10s; see .margo/registry.log"
}
