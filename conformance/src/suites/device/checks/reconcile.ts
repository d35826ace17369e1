/**
 * device.reconcile: what actually runs on the Compose host (digest 6.5, 10, 11; items 55, 72-74,
 * 89). Judged only from the engine's containers, never from reported statuses (device.status
 * judges those), so a device that reports well but deploys wrongly fails here.
 *
 * Drift repair (a container removed behind the device's back comes back) is not checked: rc.3
 * states no requirement for it (items 65/72 speak of state changes and install order only).
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, EngineContainer } from "../context.js";
import {
  brief,
  CONVERGE_MS,
  containersOf,
  deployRunning,
  deviceCheck,
  isManifestGet,
  isRunning,
  markOf,
  mixedScenario,
  pairScenario,
  pause,
  planDeployment,
  publishAndFetch,
  requireCompose,
  runningPlan,
  stateOf,
  statusesOf,
} from "./support.js";

/** Docker's StartedAt (RFC 3339 with up to 9 fraction digits) as nanoseconds, comparable exactly. */
export function startedNs(iso: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso);
  if (!m) return 0n;
  const seconds = Date.parse(`${m[1]}${m[3] || "Z"}`);
  if (Number.isNaN(seconds)) return 0n;
  const frac = (m[2] ?? "").padEnd(9, "0").slice(0, 9);
  return BigInt(seconds) * 1_000_000n + BigInt(frac);
}

function earliest(cs: EngineContainer[]): EngineContainer | undefined {
  return [...cs].sort((a, b) => (startedNs(a.startedAt) < startedNs(b.startedAt) ? -1 : 1))[0];
}

const singleRuns = deviceCheck({
  id: "device.reconcile.single-component-runs",
  title: "A single-component Compose deployment is deployed and its container runs",
  requirements: ["device-072", "device-073"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    const { containers } = await deployRunning(ctx, t, a);
    // Still running a moment later: `wait: true` success means the containers keep running.
    await pause(t);
    const now = containersOf(await requireCompose(ctx, t).containers(t), a.deploymentId);
    t.expect(
      now.some(isRunning),
      `items 72/73: the container of deployment ${a.deploymentId} stopped right after it started`,
      { before: containers.map(brief), now: now.map(brief) },
    );
  },
});

/** The first check of a run deploys the shared scenario: it needs the time for it. */
const SCENARIO_TIMEOUT_MS = 75_000;

/** The pair scenario's containers once all components ran, or fail. */
async function pairInstalled(ctx: DeviceCtx, t: CheckTools, item: string) {
  const o = await pairScenario(ctx, t);
  if (!o.installed)
    t.fail(
      `${item}: the components (zeta, alpha) of deployment ${o.plan.deploymentId} never all ran within ${CONVERGE_MS} ms`,
    );
  return { o, installed: o.installed };
}

const listedOrder = deviceCheck({
  id: "device.reconcile.listed-order",
  title: "Components are installed in the listed order (wait: true)",
  requirements: ["device-072"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    // Listed order (zeta, alpha) is the reverse of name order, so sorting by name is caught.
    const { o, installed } = await pairInstalled(ctx, t, "item 72");
    const first = earliest(containersOf(installed, o.plan.deploymentId, "zeta"));
    const second = earliest(containersOf(installed, o.plan.deploymentId, "alpha"));
    if (!first || !second) t.fail("item 72: no container for one of the components");
    t.note(`zeta started ${first.startedAt}, alpha started ${second.startedAt}`);
    t.expect(
      startedNs(first.startedAt) < startedNs(second.startedAt),
      `item 72: components must be installed in listed order (zeta, then alpha with wait: true), but alpha started at ${second.startedAt}, not after zeta at ${first.startedAt}`,
      { containers: installed.map(brief) },
    );
  },
});

const exitNotRunning = deviceCheck({
  id: "device.reconcile.non-zero-exit-not-running",
  title: "A component whose container exits non-zero is not left running or restarting",
  requirements: ["device-073"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await mixedScenario(ctx, t);
    t.expect(
      o.crashExited || o.failedReported,
      `item 73: the component "crash" of deployment ${o.plan.deploymentId} was never started (no exited container within ${CONVERGE_MS} ms)`,
    );
    const alive = o.crashSamples
      .flat()
      .filter((c) => c.state === "running" || c.state === "restarting");
    t.expect(
      alive.length === 0,
      `item 73: a component that exits non-zero during start has failed; its container must not be kept running or restarting (seen ${alive
        .map((c) => `${c.name} ${c.state}`)
        .join(", ")})`,
      { samples: o.crashSamples.map((s) => s.map(brief)) },
    );
  },
});

const removal = deviceCheck({
  id: "device.reconcile.removed-when-absent",
  title: "A deployment dropped from the manifest is removed from the engine",
  requirements: ["device-055"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const { o } = await pairInstalled(ctx, t, "item 55");
    t.expect(
      o.removed,
      `item 55: deployment ${o.plan.deploymentId} was dropped from the manifest, but its containers were still there after ${CONVERGE_MS} ms`,
    );
  },
});

const otelEnv = deviceCheck({
  id: "device.reconcile.otel-endpoint-injected",
  title: "Every workload container gets HTTP_OTEL_EXPORTER_OTLP_ENDPOINT",
  requirements: ["device-089"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const { installed } = await pairInstalled(ctx, t, "item 89");
    const lacking = installed.filter(
      (c) => !c.env.some((e) => /^HTTP_OTEL_EXPORTER_OTLP_ENDPOINT=.+/.test(e)),
    );
    t.expect(
      lacking.length === 0,
      `item 89: every workload container must get HTTP_OTEL_EXPORTER_OTLP_ENDPOINT; missing in ${lacking
        .map((c) => `${c.name} (${markOf(c)})`)
        .join(", ")}`,
      { containers: lacking.map((c) => ({ ...brief(c), env: c.env })) },
    );
  },
});

const unsafeArchive = deviceCheck({
  id: "device.reconcile.unsafe-archive-refused",
  title: "A Compose archive with a ../ entry is never deployed",
  requirements: ["device-074"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const engine = requireCompose(ctx, t);
    const a = planDeployment(ctx, [{ name: "escape", ref: ctx.components.unsafeArchive }]);
    const { fetchSeq } = await publishAndFetch(ctx, t, [a]);
    // Sync point: the device reported on it, or polled three more times since fetching it.
    await ctx.wfm.waitFor(
      t,
      "the device to act on the deployment (a status, or three further polls)",
      () =>
        statusesOf(ctx, a.deploymentId).some((s) => stateOf(s) === "failed") ||
        ctx.wfm.requests().filter((r) => r.seq > fetchSeq && isManifestGet(r)).length >= 3,
      15_000,
    );
    await pause(t);
    const seen = containersOf(await engine.containers(t), a.deploymentId);
    t.expect(
      seen.length === 0,
      `item 74: a Compose archive with a ../ entry must be refused before extract/deploy, but containers were created: ${seen
        .map((c) => c.name)
        .join(", ")}`,
      { containers: seen.map(brief) },
    );
  },
});

export const reconcileChecks: Check<DeviceCtx>[] = [
  singleRuns,
  listedOrder,
  exitNotRunning,
  removal,
  otelEnv,
  unsafeArchive,
];
