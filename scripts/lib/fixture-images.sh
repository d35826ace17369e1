# shellcheck shell=bash
# Builds the fixture images locally (no registry can be pulled from) and pushes them to the local
# registry. A build is skipped when the image already carries the hash of its inputs, and a push
# is skipped when the registry already serves the same manifest. Sourced by scripts/bootstrap.sh.

MARGO_FIXTURE_IMAGE="$MARGO_REGISTRY_ADDR/margo-fixtures/busybox:1"
MARGO_INPUTS_LABEL=org.margo.fixture.inputs

# Bumped when the build procedure itself changes in a way the inputs do not show.
MARGO_FIXTURE_RECIPE=1

# The static busybox binary shipped by busybox-static (not the dynamic `busybox` package's).
static_busybox_path() {
  local p
  p=$(grep -E '/s?bin/busybox$' /var/lib/dpkg/info/busybox-static.list 2>/dev/null | head -n1)
  if [ -z "$p" ] || [ ! -x "$p" ]; then
    die "busybox-static's /bin/busybox not found"
  fi
  echo "$p"
}

# Hash of everything that goes into the image, stored as a label on it.
inputs_hash() {
  { echo "recipe=$MARGO_FIXTURE_RECIPE"; sha256sum "$@" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1
}

# Digest the registry serves for a tag, or nothing.
registry_manifest_digest() {
  local ref=$1 repo tag
  repo=${ref#*/}
  tag=${repo##*:}
  repo=${repo%:*}
  curl -s -m 5 -o /dev/null -D - -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$MARGO_REGISTRY_ADDR/v2/$repo/manifests/$tag" 2>/dev/null |
    awk 'tolower($1) == "docker-content-digest:" { gsub("\r", "", $2); print $2 }'
}

# Prints the image's inputs label on the first line and every repo digest on the next lines
# (one docker call for both: a repeated `up` must stay fast).
local_image_facts() {
  docker image inspect -f "{{index .Config.Labels \"$MARGO_INPUTS_LABEL\"}}{{println}}{{range .RepoDigests}}{{println .}}{{end}}" \
    "$1" 2>/dev/null || true
}

ensure_busybox_image() {
  local t0 dir="$MARGO_ROOT/fixtures/images/busybox" bb want have ctx remote local_d facts
  local log="$MARGO_STATE/build.log" repo="${MARGO_FIXTURE_IMAGE%:*}"
  t0=$(now_us)
  bb=$(static_busybox_path)
  want=$(inputs_hash "$dir/Dockerfile" "$bb")
  facts=$(local_image_facts "$MARGO_FIXTURE_IMAGE")
  have=$(head -n1 <<<"$facts")
  if [ "$have" = "$want" ]; then
    say "image $MARGO_FIXTURE_IMAGE: up to date"
  else
    ctx=$(mktemp -d)
    cp "$dir/Dockerfile" "$ctx/Dockerfile"
    cp "$bb" "$ctx/busybox"
    # The classic builder: BuildKit needs the buildx plugin (a newer client may insist on it) and
    # may try to resolve frontends online; nothing here benefits from it.
    if ! DOCKER_BUILDKIT=0 docker build -q --label "$MARGO_INPUTS_LABEL=$want" \
      -t "$MARGO_FIXTURE_IMAGE" "$ctx" >>"$log" 2>&1; then
      rm -rf "$ctx"
      tail -n 20 "$log" >&2 || true
      die "building $MARGO_FIXTURE_IMAGE failed; see .margo/build.log"
    fi
    rm -rf "$ctx"
    say "image $MARGO_FIXTURE_IMAGE: built in $(elapsed_since "$t0")"
    facts=$(local_image_facts "$MARGO_FIXTURE_IMAGE")
  fi
  t0=$(now_us)
  remote=$(registry_manifest_digest "$MARGO_FIXTURE_IMAGE")
  local_d=$(tail -n +2 <<<"$facts" | awk -F@ -v r="$repo" '$1 == r { print $2; exit }')
  if [ -n "$remote" ] && [ "$remote" = "$local_d" ]; then
    say "image $MARGO_FIXTURE_IMAGE: already in registry ($remote)"
    return 0
  fi
  docker push -q "$MARGO_FIXTURE_IMAGE" >>"$log" 2>&1 || {
    tail -n 20 "$log" >&2 || true
    die "pushing $MARGO_FIXTURE_IMAGE to $MARGO_REGISTRY_ADDR failed; see .margo/build.log"
  }
  say "image $MARGO_FIXTURE_IMAGE: pushed in $(elapsed_since "$t0") ($(registry_manifest_digest "$MARGO_FIXTURE_IMAGE"))"
}
