#!/usr/bin/env bash
# Starts the reference agent as the device under test of the self-conformance run. The harness
# runs this once its fresh Compose host is up (device.launch.command) and reads the one JSON line
# `margo-agent run` prints ({"pid","driverPort"}) to find DeviceDriverService.
#
# The agent starts unprovisioned: rc.3 has no enrollment (digest 5.7), so its identity, WFM URL
# and device id come later through DeviceDriver Configure, which the harness calls against its own
# instrumented WFM. `init` still wants a WFM URL and an identity folder: the URL is a placeholder
# that Configure replaces before the agent ever dials it, and the folder starts empty (the agent
# then waits for Configure instead of exiting). The DeviceDriver token is created by `run` at
# <state-dir>/driver.token, which the harness config names as device.driver.tokenFile.
#
# Environment (from the harness): MARGO_CONFORMANCE_WORKDIR (required), MARGO_CONFORMANCE_DOCKER_HOST
# (unix:///... of the Compose host; default the main engine), MARGO_CONFORMANCE_KUBECONFIG (Helm,
# when a kind cluster exists), MARGO_REGISTRY (the plain-HTTP loopback registry the test
# components live in), MARGO_TEST_MUTANT (passed through to the agent: test-only mutants).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
agent="$root/reference-agent/bin/margo-agent"
work=${MARGO_CONFORMANCE_WORKDIR:?MARGO_CONFORMANCE_WORKDIR is not set (the harness sets it)}
state="$work/agent"
identity="$work/agent-identity"
docker_host=${MARGO_CONFORMANCE_DOCKER_HOST:-unix:///var/run/docker.sock}
case "$docker_host" in
  unix://*) socket=${docker_host#unix://} ;;
  *)
    echo "launch-agent: MARGO_CONFORMANCE_DOCKER_HOST must be unix:///path, got $docker_host" >&2
    exit 2
    ;;
esac

mkdir -p "$identity"
if [ ! -f "$state/agent.json" ]; then
  "$agent" init --state-dir "$state" --device-id unconfigured \
    --wfm-url https://127.0.0.1:1 --identity-dir "$identity" \
    --driver-port 0 --docker-socket "$socket" --poll-ms 200 >&2
  # Keys init has no flag for. The registry is plain HTTP on loopback; drift is checked every
  # second so the harness's drift check does not wait out the 5 s default; the trust bundle may
  # be refreshed every second (floor 5 s by default) so the device.trust checks can use 1 s hints.
  AGENT_JSON="$state/agent.json" REGISTRY="${MARGO_REGISTRY:-127.0.0.1:5000}" \
    KUBECONFIG_FILE="${MARGO_CONFORMANCE_KUBECONFIG:-}" node -e '
      const fs = require("node:fs");
      const f = process.env.AGENT_JSON;
      const c = JSON.parse(fs.readFileSync(f, "utf8"));
      c.plainHttpRegistries = [process.env.REGISTRY];
      c.driftCheckMs = 1000;
      c.trust = { ...c.trust, minRefreshSeconds: 1 };
      if (process.env.KUBECONFIG_FILE) c.helm = { ...c.helm, enabled: true, kubeconfig: process.env.KUBECONFIG_FILE };
      fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n", { mode: 0o600 });
    '
fi
exec "$agent" run --config "$state/agent.json"
