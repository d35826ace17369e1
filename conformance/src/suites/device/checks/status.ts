/**
 * device.status: the statuses the device POSTs to `/api/v1/deployments/{id}/status` (digest 7;
 * items 65-70, plus the reported side of 72/73). Judged from the bodies the instrumented WFM
 * received; what runs on the engine is device.reconcile's concern.
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, ReceivedStatus } from "../context.js";
import {
  CONVERGE_MS,
  containersOf,
  deviceCheck,
  type PlannedDeployment,
  PRECEDENCE,
  pause,
  planDeployment,
  publishAndFetch,
  requireCompose,
  runningPlan,
  STATES,
  type State,
  stateOf,
  statusesOf,
  waitStatus,
} from "./support.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function componentsOf(s: ReceivedStatus): Obj[] {
  const c = s.body.components;
  return Array.isArray(c) ? c.filter(isObj) : [];
}

function states(ctx: DeviceCtx, id: string): string[] {
  return statusesOf(ctx, id).map((s) => String(stateOf(s)));
}

/** Publish and wait for the status in `state` (fail with the states seen on timeout). */
async function reach(
  ctx: DeviceCtx,
  t: CheckTools,
  plan: PlannedDeployment,
  state: State,
  timeoutMs = CONVERGE_MS,
): Promise<{ version: bigint; status: ReceivedStatus }> {
  requireCompose(ctx, t);
  const { manifest } = await publishAndFetch(ctx, t, [plan]);
  const status = await waitStatus(ctx, t, plan.deploymentId, state, timeoutMs).catch(
    (e: unknown) => {
      t.note(`states reported: ${states(ctx, plan.deploymentId).join(" -> ") || "none"}`);
      throw e;
    },
  );
  return { version: manifest.manifestVersion, status };
}

/** How long a report may trail the change it reports once the engine shows the change. */
const REPORT_MS = 5_000;

/**
 * Drop the deployment from the manifest and wait until its containers are gone from the engine:
 * only a sync point (so a missing "removed" report fails in seconds, not at the converge
 * timeout); the verdict stays with the reported statuses.
 */
async function removeAndSettle(ctx: DeviceCtx, t: CheckTools, plan: PlannedDeployment) {
  await publishAndFetch(ctx, t, []);
  const deadline = Date.now() + CONVERGE_MS;
  const engine = requireCompose(ctx, t);
  while (Date.now() < deadline) {
    if (statusesOf(ctx, plan.deploymentId).some((s) => stateOf(s) === "removed")) return;
    if (containersOf(await engine.containers(t), plan.deploymentId).length === 0) return;
    await pause(t, 200);
  }
}

/** `first` reported before `then` (both present). */
function expectSequence(
  ctx: DeviceCtx,
  t: CheckTools,
  id: string,
  first: State,
  then: State,
  why: string,
) {
  const seen = states(ctx, id);
  const i = seen.indexOf(first);
  const j = seen.lastIndexOf(then);
  t.expect(
    i >= 0 && j > i,
    `item 65: ${why}: expected "${first}" then "${then}", reported: ${seen.join(" -> ") || "nothing"}`,
  );
}

const installSequence = deviceCheck({
  id: "device.status.install-reported",
  title: "An install is reported as installing, then installed",
  requirements: ["device-065"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    await reach(ctx, t, a, "installed");
    expectSequence(
      ctx,
      t,
      a.deploymentId,
      "installing",
      "installed",
      "every state change of an install is reported",
    );
  },
});

const removalSequence = deviceCheck({
  id: "device.status.removal-reported",
  title: "A removal is reported as removing, then removed",
  requirements: ["device-065"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    await reach(ctx, t, a, "installed");
    await removeAndSettle(ctx, t, a);
    await waitStatus(ctx, t, a.deploymentId, "removed", REPORT_MS).catch((e: unknown) => {
      t.note(`states reported: ${states(ctx, a.deploymentId).join(" -> ")}`);
      throw e;
    });
    expectSequence(
      ctx,
      t,
      a.deploymentId,
      "removing",
      "removed",
      "every state change of a removal is reported",
    );
  },
});

function errorsOf(s: ReceivedStatus): Array<{ where: string; error: Obj }> {
  const out: Array<{ where: string; error: Obj }> = [];
  const st = s.body.status;
  if (isObj(st) && isObj(st.error)) out.push({ where: "status.error", error: st.error });
  for (const c of componentsOf(s)) {
    if (isObj(c.error)) out.push({ where: `component ${String(c.name)}`, error: c.error });
  }
  return out;
}

const failureReported = deviceCheck({
  id: "device.status.failure-reported",
  title: "A component exiting non-zero is reported failed (never installed) with an error",
  requirements: ["device-065", "device-073"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [{ name: "crash", ref: ctx.components.exitsNonZero }]);
    const { status } = await reach(ctx, t, a, "failed");
    const seen = states(ctx, a.deploymentId);
    t.expect(
      !seen.includes("installed"),
      `item 73: a component that exits non-zero during start must be failed, not installed; reported: ${seen.join(" -> ")}`,
    );
    const errors = errorsOf(status);
    t.expect(
      errors.some((e) => typeof e.error.message === "string" && e.error.message !== ""),
      "item 65: the failed status must say what failed (status.error or the component's error with a message)",
      { body: status.body },
    );
  },
});

const errorSource = deviceCheck({
  id: "device.status.error-source",
  title:
    "error.source names the component for component errors and metadata.name for deployment errors",
  requirements: ["device-070"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [
      { name: "fine", ref: ctx.components.running },
      { name: "crash", ref: ctx.components.exitsNonZero },
    ]);
    const { status } = await reach(ctx, t, a, "failed");
    const errors = errorsOf(status);
    if (errors.length === 0)
      t.skip("the failed status carries no error object, so error.source cannot be judged");
    const wrong: string[] = [];
    for (const e of errors) {
      const source = e.error.source;
      if (e.where === "status.error") {
        // A deployment-level error names the deployment; one lifted from a component names it.
        if (source !== a.name && !a.components.includes(String(source)))
          wrong.push(
            `status.error.source ${JSON.stringify(source)} (expected "${a.name}" or a component name)`,
          );
      } else {
        const name = e.where.slice("component ".length);
        if (source !== name)
          wrong.push(`${e.where}: error.source ${JSON.stringify(source)} (expected "${name}")`);
      }
    }
    t.expect(wrong.length === 0, `item 70: ${wrong.join("; ")}`, { body: status.body });
  },
});

const bodyShape = deviceCheck({
  id: "device.status.body-fields",
  title:
    "Every status names the path's deploymentId, the adopted manifestVersion, a state and components",
  requirements: ["device-066"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    const { version } = await reach(ctx, t, a, "installed");
    const problems: string[] = [];
    for (const s of statusesOf(ctx, a.deploymentId)) {
      const b = s.body;
      const tag = `status #${s.seq} (${String(stateOf(s))})`;
      if (b.deploymentId !== s.deploymentId)
        problems.push(
          `${tag}: deploymentId ${JSON.stringify(b.deploymentId)} differs from the path's ${s.deploymentId}`,
        );
      const adopted = b.adoptedManifestVersion;
      let v: bigint | undefined;
      try {
        v =
          typeof adopted === "number" || typeof adopted === "string" ? BigInt(adopted) : undefined;
      } catch {
        v = undefined;
      }
      if (v === undefined)
        problems.push(
          `${tag}: adoptedManifestVersion missing or not an integer (${JSON.stringify(adopted)})`,
        );
      else if (v !== version)
        problems.push(
          `${tag}: adoptedManifestVersion ${v}, but the deployment came with manifestVersion ${version}`,
        );
      if (!isObj(b.status) || b.status.state === undefined)
        problems.push(`${tag}: status.state missing`);
      if (!Array.isArray(b.components)) problems.push(`${tag}: components[] missing`);
    }
    t.expect(problems.length === 0, `item 66: ${problems.slice(0, 6).join("; ")}`);
  },
});

const stateValues = deviceCheck({
  id: "device.status.state-values",
  title: "States are only the six lowercase rc.3 values, at deployment and component level",
  requirements: ["device-067"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    await reach(ctx, t, a, "installed");
    await removeAndSettle(ctx, t, a);
    await waitStatus(
      ctx,
      t,
      a.deploymentId,
      (s) => stateOf(s) === "removed" || stateOf(s) === "failed",
      REPORT_MS,
    );
    const bad: string[] = [];
    for (const s of statusesOf(ctx, a.deploymentId)) {
      const overall = stateOf(s);
      if (!STATES.includes(overall as State))
        bad.push(`status #${s.seq}: state ${JSON.stringify(overall)}`);
      for (const c of componentsOf(s)) {
        if (!STATES.includes(c.state as State))
          bad.push(
            `status #${s.seq} component ${String(c.name)}: state ${JSON.stringify(c.state)}`,
          );
      }
    }
    t.expect(
      bad.length === 0,
      `item 67: only ${STATES.join("|")} are allowed; got ${bad.join("; ")}`,
    );
  },
});

const componentEntries = deviceCheck({
  id: "device.status.one-entry-per-component",
  title: "components[] has exactly one entry per component, names matching the deployment",
  requirements: ["device-068"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [
      { name: "zeta", ref: ctx.components.running },
      { name: "alpha", ref: ctx.components.running },
    ]);
    await reach(ctx, t, a, "installed");
    const want = [...a.components].sort().join(",");
    const bad: string[] = [];
    for (const s of statusesOf(ctx, a.deploymentId)) {
      const names = componentsOf(s).map((c) => String(c.name));
      if ([...names].sort().join(",") !== want)
        bad.push(`status #${s.seq} (${String(stateOf(s))}) lists [${names.join(", ")}]`);
    }
    t.expect(
      bad.length === 0,
      `item 68: every status must list each of [${a.components.join(", ")}] exactly once: ${bad.join("; ")}`,
    );
  },
});

/** Most severe of the component states per item 69 (unknown states are ignored). */
export function mostSevere(componentStates: string[]): State | undefined {
  return PRECEDENCE.find((s) => componentStates.includes(s));
}

const precedence = deviceCheck({
  id: "device.status.overall-most-severe",
  title: "The overall state is the most severe component state",
  requirements: ["device-069"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    // One component runs, the next fails: the final report mixes installed and failed.
    const a = planDeployment(ctx, [
      { name: "fine", ref: ctx.components.running },
      { name: "crash", ref: ctx.components.exitsNonZero },
    ]);
    await reach(ctx, t, a, "failed");
    const bad: string[] = [];
    let mixed = 0;
    for (const s of statusesOf(ctx, a.deploymentId)) {
      const cs = componentsOf(s).map((c) => String(c.state));
      if (new Set(cs).size > 1) mixed++;
      const want = mostSevere(cs);
      if (want !== undefined && stateOf(s) !== want)
        bad.push(
          `status #${s.seq}: components [${cs.join(", ")}] but overall ${JSON.stringify(stateOf(s))} (expected ${want})`,
        );
    }
    t.note(`${mixed} report(s) with mixed component states`);
    t.expect(bad.length === 0, `item 69 (${PRECEDENCE.join(" > ")}): ${bad.join("; ")}`);
  },
});

const timeoutFails = deviceCheck({
  id: "device.status.timeout-fails",
  title: "A component that never becomes ready fails once its timeout passes",
  requirements: ["device-072", "device-073s"],
  level: "SHOULD",
  async run(ctx: DeviceCtx, t: CheckTools) {
    const a = planDeployment(ctx, [
      { name: "slow", ref: ctx.components.neverReady, wait: true, timeout: "0m3s" },
    ]);
    await reach(ctx, t, a, "failed", 20_000);
    const seen = states(ctx, a.deploymentId);
    t.expect(
      !seen.includes("installed"),
      `item 72: a component exceeding its timeout must fail, never be reported installed; reported: ${seen.join(" -> ")}`,
    );
  },
});

export const statusChecks: Check<DeviceCtx>[] = [
  installSequence,
  removalSequence,
  failureReported,
  errorSource,
  bodyShape,
  stateValues,
  componentEntries,
  precedence,
  timeoutFails,
];
