/**
 * device.status: the statuses the device POSTs to `/api/v1/deployments/{id}/status` (digest 7;
 * items 65-70, plus the reported side of 72/73). Judged from the bodies the instrumented WFM
 * received; what runs on the engine is device.reconcile's concern.
 *
 * Most checks judge one of two shared scenarios (support.ts: "pair" installs two components and
 * removes them, "mixed" has one component that runs and one that exits 1), each deployed once
 * per run: deploying is what costs, and the concerns judged here are all visible in them.
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, ReceivedStatus } from "../context.js";
import {
  deviceCheck,
  type MixedObservation,
  mixedScenario,
  type PairObservation,
  PRECEDENCE,
  pairScenario,
  planDeployment,
  publishAndFetch,
  requireCompose,
  STATES,
  type State,
  stateOf,
  statusesOf,
  waitStatus,
} from "./support.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** The first check of a run deploys the shared scenario: it needs the time for it. */
const SCENARIO_TIMEOUT_MS = 75_000;

function componentsOf(s: ReceivedStatus): Obj[] {
  const c = s.body.components;
  return Array.isArray(c) ? c.filter(isObj) : [];
}

function statesOf(statuses: ReceivedStatus[]): string[] {
  return statuses.map((s) => String(stateOf(s)));
}

/** `first` reported before `then` (both present). */
function expectSequence(
  t: CheckTools,
  statuses: ReceivedStatus[],
  first: State,
  then: State,
  why: string,
) {
  const seen = statesOf(statuses);
  const i = seen.indexOf(first);
  const j = seen.lastIndexOf(then);
  t.expect(
    i >= 0 && j > i,
    `item 65: ${why}: expected "${first}" then "${then}", reported: ${seen.join(" -> ") || "nothing"}`,
  );
}

function notePair(t: CheckTools, o: PairObservation) {
  t.note(
    `deployment ${o.plan.deploymentId} (zeta, alpha), manifestVersion ${o.version}: ${
      o.installed ? "all components ran" : "components never all ran"
    }, ${o.removed ? "removed from the engine" : "not removed from the engine"}; reported ${statesOf(o.statuses).join(" -> ") || "nothing"}`,
  );
}

function noteMixed(t: CheckTools, o: MixedObservation) {
  t.note(
    `deployment ${o.plan.deploymentId} (fine, crash), manifestVersion ${o.version}: reported ${statesOf(o.statuses).join(" -> ") || "nothing"}`,
  );
}

const installSequence = deviceCheck({
  id: "device.status.install-reported",
  title: "An install is reported as installing, then installed",
  requirements: ["device-065"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await pairScenario(ctx, t);
    notePair(t, o);
    expectSequence(
      t,
      o.statuses,
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
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await pairScenario(ctx, t);
    notePair(t, o);
    if (!statesOf(o.statuses).includes("installed"))
      t.fail(
        `item 65: the deployment was never reported installed, so its removal cannot be judged; reported: ${statesOf(o.statuses).join(" -> ") || "nothing"}`,
      );
    expectSequence(
      t,
      o.statuses,
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

/** The last failed status of the mixed scenario, or fail. */
function failedStatus(t: CheckTools, o: MixedObservation): ReceivedStatus {
  const failed = o.statuses.filter((s) => stateOf(s) === "failed").at(-1);
  if (!failed)
    t.fail(
      `item 65: a component exiting 1 at start must be reported failed; reported: ${statesOf(o.statuses).join(" -> ") || "nothing"}`,
    );
  return failed;
}

const failureReported = deviceCheck({
  id: "device.status.failure-reported",
  title: "A component exiting non-zero is reported failed (never installed) with an error",
  requirements: ["device-065", "device-073"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await mixedScenario(ctx, t);
    noteMixed(t, o);
    const status = failedStatus(t, o);
    const seen = statesOf(o.statuses);
    t.expect(
      !seen.includes("installed"),
      `item 73: a deployment whose component exits non-zero during start must be failed, never installed; reported: ${seen.join(" -> ")}`,
    );
    t.expect(
      errorsOf(status).some((e) => typeof e.error.message === "string" && e.error.message !== ""),
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
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await mixedScenario(ctx, t);
    noteMixed(t, o);
    const status = failedStatus(t, o);
    const errors = errorsOf(status);
    if (errors.length === 0)
      t.skip("the failed status carries no error object, so error.source cannot be judged");
    const a = o.plan;
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

const INSTALL_PHASE = new Set(["pending", "installing", "installed", "failed"]);

function asBigInt(v: unknown): bigint | undefined {
  try {
    return typeof v === "number" || typeof v === "string" ? BigInt(v) : undefined;
  } catch {
    return undefined;
  }
}

const bodyShape = deviceCheck({
  id: "device.status.body-fields",
  title:
    "Every status names the path's deploymentId, the adopted manifestVersion, a state and components",
  requirements: ["device-066"],
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await pairScenario(ctx, t);
    notePair(t, o);
    if (o.statuses.length === 0)
      t.fail("item 66: the device reported no status for its deployment");
    const problems: string[] = [];
    for (const s of o.statuses) {
      const b = s.body;
      const state = String(stateOf(s));
      const tag = `status #${s.seq} (${state})`;
      if (b.deploymentId !== s.deploymentId)
        problems.push(
          `${tag}: deploymentId ${JSON.stringify(b.deploymentId)} differs from the path's ${s.deploymentId}`,
        );
      const v = asBigInt(b.adoptedManifestVersion);
      if (v === undefined)
        problems.push(
          `${tag}: adoptedManifestVersion missing or not an integer (${JSON.stringify(b.adoptedManifestVersion)})`,
        );
      // The revision came with manifestVersion N; a removal may name N or the manifest that dropped it.
      else if (INSTALL_PHASE.has(state) ? v !== o.version : v < o.version)
        problems.push(
          `${tag}: adoptedManifestVersion ${v}, but the deployment came with manifestVersion ${o.version}`,
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
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await pairScenario(ctx, t);
    notePair(t, o);
    if (o.statuses.length === 0)
      t.fail("item 67: the device reported no status for its deployment");
    const bad: string[] = [];
    for (const s of o.statuses) {
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
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    const o = await pairScenario(ctx, t);
    notePair(t, o);
    if (o.statuses.length === 0)
      t.fail("item 68: the device reported no status for its deployment");
    const want = [...o.plan.components].sort().join(",");
    const bad: string[] = [];
    for (const s of o.statuses) {
      const names = componentsOf(s).map((c) => String(c.name));
      if ([...names].sort().join(",") !== want)
        bad.push(`status #${s.seq} (${String(stateOf(s))}) lists [${names.join(", ")}]`);
    }
    t.expect(
      bad.length === 0,
      `item 68: every status must list each of [${o.plan.components.join(", ")}] exactly once: ${bad.join("; ")}`,
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
  timeoutMs: SCENARIO_TIMEOUT_MS,
  async run(ctx: DeviceCtx, t: CheckTools) {
    // One component runs, the next fails: the reports mix installed, pending and failed.
    const o = await mixedScenario(ctx, t);
    noteMixed(t, o);
    failedStatus(t, o);
    const bad: string[] = [];
    let mixed = 0;
    for (const s of o.statuses) {
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
  // Only the SHOULD half of item 73 makes this observable (see below): citing the MUST of item 72
  // would claim a MUST the check cannot judge for a device that does not wait for healthy.
  requirements: ["device-073s"],
  level: "SHOULD",
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    // Never ready = its healthcheck never passes: only a device that waits for healthy (the
    // SHOULD half of item 73) can see the timeout run out, hence SHOULD.
    const a = planDeployment(ctx, [
      { name: "slow", ref: ctx.components.neverReady, wait: true, timeout: "0m1s" },
    ]);
    await publishAndFetch(ctx, t, [a]);
    await waitStatus(ctx, t, a.deploymentId, "failed", 20_000).catch((e: unknown) => {
      t.note(
        `states reported: ${statesOf(statusesOf(ctx, a.deploymentId)).join(" -> ") || "none"}`,
      );
      throw e;
    });
    const seen = statesOf(statusesOf(ctx, a.deploymentId));
    t.expect(
      !seen.includes("installed"),
      `item 73 (SHOULD, with item 72's timeout): a component exceeding its timeout must fail, never be reported installed; reported: ${seen.join(" -> ")}`,
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
