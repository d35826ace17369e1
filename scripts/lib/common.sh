# shellcheck shell=bash
# Shared helpers for scripts/bootstrap.sh: progress lines with timings, clear failures, and the
# record of what the bootstrap itself started (so `down` never stops someone else's daemon).
# Sourced, not executed; expects MARGO_STATE and MARGO_STARTED to be set by the caller.

# Monotonic-enough wall clock in microseconds; bash 5 gives it without forking.
now_us() {
  local t=${EPOCHREALTIME/./}
  echo "$t"
}

# Seconds since a now_us mark, one decimal: progress lines show where the time goes.
elapsed_since() {
  local start=$1 end
  end=$(now_us)
  awk -v d="$((end - start))" 'BEGIN { printf "%.1fs", d / 1000000 }'
}

say() { printf '%s\n' "$*"; }

# Stops the run with the reason on stderr; the caller sees a non-zero exit and one clear line.
die() {
  printf 'bootstrap: ERROR: %s\n' "$*" >&2
  exit 1
}

warn() { printf 'bootstrap: warning: %s\n' "$*" >&2; }

# The kernel's start time of a process (clock ticks since boot). Stored next to each pid we
# start so a recycled pid is never mistaken for our daemon.
proc_starttime() {
  local pid=$1
  [ -r "/proc/$pid/stat" ] || return 1
  sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20
}

# True when pid is alive and is still the very process that was recorded.
proc_is() {
  local pid=$1 starttime=$2 now
  now=$(proc_starttime "$pid" 2>/dev/null) || return 1
  [ "$now" = "$starttime" ]
}


# Records a process this bootstrap started: name, pid, kernel start time, when, and its log.
record_started() {
  local name=$1 pid=$2 log=$3 st
  st=$(proc_starttime "$pid") || st=unknown
  forget_started "$name"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$pid" "$st" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$log" \
    >>"$MARGO_STARTED"
}

# Drops a name from the record (after stopping it, or when the recorded process is gone).
forget_started() {
  local name=$1 f
  f=$MARGO_STARTED
  [ -f "$f" ] || return 0
  awk -F'\t' -v n="$name" '$1 != n' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
}

# Prints "pid starttime" of a recorded name, or nothing.
started_entry() {
  local name=$1 f
  f=$MARGO_STARTED
  [ -f "$f" ] || return 0
  awk -F'\t' -v n="$name" '$1 == n { print $2, $3 }' "$f" | tail -n1
}

# True when the recorded process for name is alive (and really ours).
started_alive() {
  local entry pid st
  entry=$(started_entry "$1")
  [ -n "$entry" ] || return 1
  read -r pid st <<<"$entry"
  proc_is "$pid" "$st"
}

# Stops a recorded process with SIGTERM, escalating to SIGKILL after a grace period, and
# forgets it. Safe when it is already gone.
stop_started() {
  local name=$1 grace=$2 entry pid st t0 i
  entry=$(started_entry "$name")
  if [ -z "$entry" ]; then
    return 0
  fi
  read -r pid st <<<"$entry"
  t0=$(now_us)
  if proc_is "$pid" "$st"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      proc_is "$pid" "$st" || break
      sleep 0.1
    done
    if proc_is "$pid" "$st"; then
      warn "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    say "$name: stopped pid $pid in $(elapsed_since "$t0")"
  else
    say "$name: recorded pid $pid already gone"
  fi
  forget_started "$name"
}

# Writes a file only when its content changes, so a repeated `up` leaves mtimes alone.
write_if_changed() {
  local path=$1 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat >"$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    return 1
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$path"
}
