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
  containersOf,
  deployRunning,
  deviceCheck,
  isManifestGet,
  isRunning,
  markOf,
  pause,
  planDeployment,
  publishAndFetch,
  requireCompose,
  runningPlan,
  stateOf,
  statusesOf,
  waitEngine,
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

const listedOrder = deviceCheck({
  id: "device.reconcile.listed-order",
  title: "Components are installed in the listed order (wait: true)",
  requirements: ["device-072"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    // Listed order is the reverse of name order, so a device that sorts by name is caught.
    const a = planDeployment(ctx, [
      { name: "zeta", ref: ctx.components.running, wait: true },
      { name: "alpha", ref: ctx.components.running, wait: true },
    ]);
    const { containers } = await deployRunning(ctx, t, a);
    const first = earliest(containersOf(containers, a.deploymentId, "zeta"));
    const second = earliest(containersOf(containers, a.deploymentId, "alpha"));
    if (!first || !second) t.fail("item 72: no container for one of the components");
    t.note(`zeta started ${first.startedAt}, alpha started ${second.startedAt}`);
    t.expect(
      startedNs(first.startedAt) < startedNs(second.startedAt),
      `item 72: components must be installed in listed order (zeta, then alpha with wait: true), but alpha started at ${second.startedAt}, not after zeta at ${first.startedAt}`,
      { containers: containers.map(brief) },
    );
  },
});

const exitNotRunning = deviceCheck({
  id: "device.reconcile.non-zero-exit-not-running",
  title: "A component whose container exits non-zero is not left running or restarting",
  requirements: ["device-073"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const engine = requireCompose(ctx, t);
    const a = planDeployment(ctx, [{ name: "crash", ref: ctx.components.exitsNonZero }]);
    const { fetchSeq } = await publishAndFetch(ctx, t, [a]);
    // Sync point: the container exited, or the device reported failed (not judged here).
    await waitEngine(
      ctx,
      t,
      `deployment ${a.deploymentId} to be attempted (an exited container, or a failed status)`,
      (cs) =>
        containersOf(cs, a.deploymentId).some((c) => c.state === "exited" && c.exitCode !== 0) ||
        statusesOf(ctx, a.deploymentId).some((s) => stateOf(s) === "failed"),
    );
    const samples: EngineContainer[][] = [];
    for (let i = 0; i < 3; i++) {
      await pause(t, 250);
      samples.push(containersOf(await engine.containers(t), a.deploymentId));
    }
    const alive = samples.flat().filter((c) => c.state === "running" || c.state === "restarting");
    t.expect(
      alive.length === 0,
      `item 73: a component that exits non-zero during start has failed; its container must not be kept running or restarting (seen ${alive
        .map((c) => `${c.name} ${c.state}`)
        .join(", ")})`,
      { samples: samples.map((s) => s.map(brief)) },
    );
    t.note(`fetched at request #${fetchSeq}`);
  },
});

const removal = deviceCheck({
  id: "device.reconcile.removed-when-absent",
  title: "A deployment dropped from the manifest is removed from the engine",
  requirements: ["device-055"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    await deployRunning(ctx, t, a);
    await publishAndFetch(ctx, t, []);
    await waitEngine(
      ctx,
      t,
      `item 55: the containers of deployment ${a.deploymentId}, absent from the new manifest, to be removed`,
      (cs) => containersOf(cs, a.deploymentId).length === 0,
    );
  },
});

const otelEnv = deviceCheck({
  id: "device.reconcile.otel-endpoint-injected",
  title: "Every workload container gets HTTP_OTEL_EXPORTER_OTLP_ENDPOINT",
  requirements: ["device-089"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    const a = planDeployment(ctx, [
      { name: "one", ref: ctx.components.running },
      { name: "two", ref: ctx.components.running },
    ]);
    const { containers } = await deployRunning(ctx, t, a);
    const lacking = containers.filter(
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
