# shellcheck shell=bash
# Installs the host tools the tests need, and only the ones missing: Debian 12 packages through
# the system apt, plus Compose v2 and oras taken from Debian 13 through a private apt list so the
# system's apt configuration is never touched. Sourced by scripts/bootstrap.sh.

# Debian 12 packages the environment needs. docker-compose is Compose v1, kept as the fallback
# when the Compose v2 plugin cannot be fetched; curl probes the registry; iproute2 gives `ss`;
# g++, make and python3 let npm build better-sqlite3 from source, because its prebuilt binaries
# are on GitHub, which this machine cannot reach.
MARGO_APT_PACKAGES=(docker.io docker-compose docker-registry busybox-static skopeo iproute2 curl g++ make python3)

# Where the Debian 13 packages are cached, so reruns and later machines with the cache are offline.
MARGO_TRIXIE_CACHE=/var/cache/margo-trixie

# Installed outside dpkg's tree so that no Debian package owns (or later removes) them; both
# directories are searched by every Docker CLI and are on root's PATH, independent of $HOME.
MARGO_COMPOSE_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
MARGO_ORAS_BIN=/usr/local/bin/oras

pkg_has_candidate() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  [ -n "$c" ] && [ "$c" != "(none)" ]
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@"
}

# At most one `apt-get update`, and only when something must be installed: first when the lists
# do not know a package at all (a fresh image), otherwise only when the install fails because the
# lists are stale (a 404 on an outdated .deb).
ensure_apt_packages() {
  local missing=() p t0 updated=0 log="$MARGO_STATE/apt.log" present
  # One dpkg-query for all of them: a repeated `up` must stay fast.
  present=$(dpkg-query -W -f='${Package} ${Status}\n' "${MARGO_APT_PACKAGES[@]}" 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
  for p in "${MARGO_APT_PACKAGES[@]}"; do
    grep -qx "$p" <<<"$present" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "packages: all present (${MARGO_APT_PACKAGES[*]})"
    return 0
  fi
  t0=$(now_us)
  say "packages: installing ${missing[*]} (log: .margo/apt.log)"
  for p in "${missing[@]}"; do
    if ! pkg_has_candidate "$p"; then
      apt-get update -q >>"$log" 2>&1 || die "apt-get update failed; see $log"
      updated=1
      break
    fi
  done
  if ! apt_install "${missing[@]}" >>"$log" 2>&1; then
    [ "$updated" -eq 0 ] || die "apt-get install ${missing[*]} failed; see $log"
    apt-get update -q >>"$log" 2>&1 || die "apt-get update failed; see $log"
    apt_install "${missing[@]}" >>"$log" 2>&1 || die "apt-get install ${missing[*]} failed; see $log"
  fi
  printf '%s\tapt\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${missing[*]}" >>"$MARGO_STATE/installed"
  say "packages: installed ${missing[*]} in $(elapsed_since "$t0")"
}

# The mirror the system already uses, so the private list fetches from the same place.
debian_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 ~ /debian\/? / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# Fetches the named Debian 13 .debs into the cache through a private apt list (own sources,
# lists, cache and preferences: the system's apt state is neither read for sources nor written).
fetch_trixie_debs() {
  local t=$MARGO_TRIXIE_CACHE log="$MARGO_STATE/apt-trixie.log" o
  mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/none" "$t/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" \
    >"$t/sources.list"
  if id _apt >/dev/null 2>&1; then
    chown _apt "$t/lists/partial" "$t/cache/archives/partial" "$t/debs"
  fi
  o=(-o "Dir::Etc::SourceList=$t/sources.list" -o "Dir::Etc::SourceParts=$t/none"
    -o "Dir::State::Lists=$t/lists" -o "Dir::Cache=$t/cache"
    -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$t/none")
  apt-get "${o[@]}" update -q >>"$log" 2>&1 || return 1
  (cd "$t/debs" && apt-get "${o[@]}" download "$@") >>"$log" 2>&1 || return 1
}

# Newest cached .deb of a package, or nothing.
cached_trixie_deb() {
  find "$MARGO_TRIXIE_CACHE" "$MARGO_TRIXIE_CACHE/debs" -maxdepth 1 -name "$1_*.deb" 2>/dev/null | sort -V | tail -n1
}

# Where Docker CLIs look for plugins, user directory first.
compose_plugin_path() {
  local d
  for d in "${DOCKER_CONFIG:-${HOME:-/root}/.docker}/cli-plugins" /usr/local/lib/docker/cli-plugins \
    /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
    if [ -x "$d/docker-compose" ]; then
      echo "$d/docker-compose"
      return 0
    fi
  done
  return 1
}

# Runs the plugin binary itself rather than `docker compose version`: same answer (it is a
# working static binary), but one process start instead of three, which keeps a repeated `up`
# fast on a loaded machine.
MARGO_COMPOSE_V2_OK=""
compose_v2_works() {
  local p
  if [ -z "$MARGO_COMPOSE_V2_OK" ]; then
    MARGO_COMPOSE_V2_OK=no
    if p=$(compose_plugin_path) && "$p" version >/dev/null 2>&1; then
      MARGO_COMPOSE_V2_OK=yes
    fi
  fi
  [ "$MARGO_COMPOSE_V2_OK" = yes ]
}
# Compose v2 and oras from Debian 13 (static Go binaries that need only libc). Failing to get
# them is not fatal: Compose falls back to v1 and the caller reports which one is in use.
ensure_trixie_tools() {
  local want=() got=() p deb x t0
  compose_v2_works || want+=(docker-compose)
  command -v oras >/dev/null 2>&1 || want+=(oras)
  if [ "${#want[@]}" -eq 0 ]; then
    say "compose v2 + oras: present"
    return 0
  fi
  t0=$(now_us)
  local fetch=()
  for p in "${want[@]}"; do
    [ -n "$(cached_trixie_deb "$p")" ] || fetch+=("$p")
  done
  if [ "${#fetch[@]}" -gt 0 ]; then
    say "debian 13: downloading ${fetch[*]} into $MARGO_TRIXIE_CACHE (log: .margo/apt-trixie.log)"
    fetch_trixie_debs "${fetch[@]}" || warn "could not fetch ${fetch[*]} from Debian 13; see .margo/apt-trixie.log"
  fi
  x=$(mktemp -d)
  for p in "${want[@]}"; do
    deb=$(cached_trixie_deb "$p")
    if [ -z "$deb" ]; then
      warn "$p from Debian 13 unavailable"
      continue
    fi
    dpkg-deb -x "$deb" "$x/$p"
    case $p in
      docker-compose)
        install -D -m755 "$x/$p/usr/libexec/docker/cli-plugins/docker-compose" "$MARGO_COMPOSE_PLUGIN"
        ;;
      oras)
        install -D -m755 "$x/$p/usr/bin/oras" "$MARGO_ORAS_BIN"
        ;;
    esac
    got+=("$p")
    printf '%s\tdebian13\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(basename "$deb")" >>"$MARGO_STATE/installed"
  done
  rm -rf "$x"
  MARGO_COMPOSE_V2_OK="" # probe again: the plugin may just have been installed
  say "debian 13: installed ${got[*]:-nothing} in $(elapsed_since "$t0")"
}

# The Compose command scripts and tests should use: v2 when the plugin works, else v1.
# shellcheck disable=SC2034 # both are read by bootstrap.sh when it writes .margo/env
detect_compose() {
  if compose_v2_works; then
    MARGO_COMPOSE_CMD="docker compose"
    MARGO_COMPOSE_MAJOR=2
  elif command -v docker-compose >/dev/null 2>&1; then
    MARGO_COMPOSE_CMD="docker-compose"
    MARGO_COMPOSE_MAJOR=1
  else
    die "neither 'docker compose' (v2) nor 'docker-compose' (v1) is available"
  fi
}
