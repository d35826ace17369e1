/**
 * device.manifest: how the device treats the State Manifest and the artifacts it references
 * (digest 6.1-6.5; items 51-56, 58). The instrumented WFM lies (faults); the verdict comes from the
 * Compose engine (what runs) and the driver's GetState (what the device holds), never from the
 * statuses it reports (device.status judges those).
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, DeviceStateView, EngineContainer, Fault } from "../context.js";
import {
  brief,
  carries,
  containersOf,
  deployRunning,
  deviceCheck,
  header,
  isManifestGet,
  isRunning,
  lastSeq,
  type PlannedDeployment,
  planDeployment,
  publishAndFetch,
  requireCompose,
  runningPlan,
  settleAfter,
  shared,
  waitEngine,
} from "./support.js";

/** What the device held and ran before a refused manifest was served. */
interface Baseline {
  plan: PlannedDeployment;
  /** A's running containers. */
  containers: EngineContainer[];
  version: bigint;
  /** Deployment ids GetState listed before the refused manifest was served. */
  held: string[];
  lastErrors: DeviceStateView["lastErrors"];
}

/** One lying manifest served over the baseline, and what the device held and ran afterwards. */
interface RefusalObservation {
  before: Baseline;
  refused: PlannedDeployment[];
  /** False when the device never fetched what `needFetch` names (nothing to judge). */
  fetched: boolean;
  state: DeviceStateView;
  now: EngineContainer[];
}

/**
 * Previous state kept, judged on what the device holds (GetState: the refused deployments are not
 * among its deployments, the accepted one still is, manifestVersion unchanged) and on the engine
 * (nothing of the refused deployments runs, the accepted containers still run, same ids). The
 * held state is the sharper signal: applying a manifest takes seconds on the engine, holding it
 * does not. Returns the violations (message + evidence), empty when the state was kept.
 */
function stateKeptViolations(
  item: string,
  o: RefusalObservation,
): Array<{ message: string; data: unknown }> {
  const { before, refused, state, now } = o;
  const out: Array<{ message: string; data: unknown }> = [];
  const held = state.deployments.map((d) => d.deploymentId);
  const taken = refused.filter((p) => held.includes(p.deploymentId));
  if (taken.length > 0)
    out.push({
      message: `${item}: the refused manifest must not be applied, but the device now holds its deployment(s) ${taken
        .map((p) => p.deploymentId)
        .join(", ")} (GetState)`,
      data: { deployments: state.deployments },
    });
  if (before.held.includes(before.plan.deploymentId) && !held.includes(before.plan.deploymentId))
    out.push({
      message: `${item}: the previous state must be kept, but the device dropped deployment ${before.plan.deploymentId} (accepted in manifestVersion ${before.version}) from its state (GetState)`,
      data: { deployments: state.deployments },
    });
  if (state.manifestVersion !== undefined && state.manifestVersion !== before.version)
    out.push({
      message: `${item}: the device must keep manifestVersion ${before.version}, but GetState reports ${state.manifestVersion}`,
      data: { manifestVersion: String(state.manifestVersion) },
    });
  const appeared = refused.flatMap((p) => containersOf(now, p.deploymentId));
  if (appeared.length > 0)
    out.push({
      message: `${item}: the refused manifest must not be applied, but containers of its deployments appeared: ${appeared
        .map((c) => c.name)
        .join(", ")}`,
      data: { containers: appeared.map(brief) },
    });
  const stillRunning = new Set(now.filter(isRunning).map((c) => c.id));
  const gone = before.containers.filter((c) => !stillRunning.has(c.id));
  if (gone.length > 0)
    out.push({
      message: `${item}: the previous state must be kept, but containers of deployment ${before.plan.deploymentId} (accepted in manifestVersion ${before.version}) are no longer running: ${gone
        .map((c) => c.name)
        .join(", ")}`,
      data: {
        before: before.containers.map(brief),
        now: containersOf(now, before.plan.deploymentId).map(brief),
      },
    });
  return out;
}

/** One lying manifest of the refusals scenario. */
interface RefusalStep {
  key: "rollback" | "deployment-digest" | "digest-algorithm" | "bundle-digest";
  item: string;
  faults: (refused: PlannedDeployment[], version: bigint) => Fault[];
  /** Keep A listed in the lying manifest (else it drops A). */
  keepA?: boolean;
  newCount?: number;
  /** The step only counts when the device fetched a path like this after the manifest. */
  needFetch?: RegExp;
}

const REFUSAL_STEPS: readonly RefusalStep[] = [
  {
    key: "rollback",
    item: "item 51 (manifestVersion <= stored)",
    faults: (_r, version) => [{ kind: "manifest-version", version }],
  },
  {
    // Two new deployments, only the first lies: the honest one must not be applied either
    // (the whole update is aborted), and the dropped one must not be removed.
    key: "deployment-digest",
    item: "item 52 (deployment digest mismatch)",
    faults: (refused) => [
      { kind: "deployment-digest-mismatch", deploymentId: refused[0]?.deploymentId ?? "" },
    ],
    newCount: 2,
  },
  {
    key: "digest-algorithm",
    item: "item 53 (sha512 digests)",
    faults: () => [{ kind: "digest-algorithm", algorithm: "sha512" }],
  },
  {
    // Several new deployments make the bundle the cheaper fetch for a device that chooses.
    key: "bundle-digest",
    item: "item 52 (bundle digest mismatch)",
    faults: () => [{ kind: "bundle-digest-mismatch" }],
    keepA: true,
    newCount: 3,
    needFetch: /^\/api\/v1\/bundles\//,
  },
];

type RefusalsObservation = Record<RefusalStep["key"], RefusalObservation>;

/** Deploy A alone (at a fresh manifestVersion) and record the baseline the steps judge against. */
async function establishBaseline(
  ctx: DeviceCtx,
  t: CheckTools,
  plan: PlannedDeployment,
  /** Deployments of earlier steps: none of them may still run once the baseline stands. */
  earlier: PlannedDeployment[] = [],
): Promise<Baseline> {
  const { manifest } = await publishAndFetch(ctx, t, [plan]);
  // A restored baseline must not count containers of a refused deployment the device applied.
  const containers = await waitEngine(
    ctx,
    t,
    `deployment ${plan.deploymentId} running alone (the baseline of the refused-manifest checks)`,
    (cs) => {
      const mine = containersOf(cs, plan.deploymentId).filter(isRunning);
      const left = earlier.flatMap((p) => containersOf(cs, p.deploymentId));
      return mine.length > 0 && left.length === 0 ? mine : undefined;
    },
  );
  const state = await ctx.device.getState(t);
  return {
    plan,
    containers,
    version: manifest.manifestVersion,
    held: state.deployments.map((d) => d.deploymentId),
    lastErrors: state.lastErrors,
  };
}

/**
 * Scenario "refusals": A is deployed once, then each lying manifest of REFUSAL_STEPS is served in
 * turn over it and what the device held and ran afterwards is recorded. Deploying A is what costs
 * (a Compose up per check before); an honest device keeps A through every step, so one baseline
 * serves all. A device that applied a lying manifest has lost the baseline: A is deployed afresh
 * before the next step, so one broken rule never spills into another check's verdict.
 */
function refusalsScenario(ctx: DeviceCtx, t: CheckTools): Promise<RefusalsObservation> {
  return shared(
    ctx,
    t,
    "refusals: lying manifests served over one running deployment",
    async () => {
      requireCompose(ctx, t);
      const a = planDeployment(ctx, [runningPlan(ctx)]);
      let before = await establishBaseline(ctx, t, a);
      const out: Partial<RefusalsObservation> = {};
      const served: PlannedDeployment[] = [];
      for (const step of REFUSAL_STEPS) {
        const refused = Array.from({ length: step.newCount ?? 1 }, () =>
          planDeployment(ctx, [runningPlan(ctx)]),
        );
        served.push(...refused);
        for (const f of step.faults(refused, before.version)) ctx.wfm.inject(f);
        const { fetchSeq } = await publishAndFetch(ctx, t, step.keepA ? [a, ...refused] : refused);
        await settleAfter(ctx, t, fetchSeq);
        const fetched = step.needFetch
          ? ctx.wfm
              .requests()
              .some((r) => r.seq > fetchSeq && r.method === "GET" && step.needFetch?.test(r.path))
          : true;
        const obs: RefusalObservation = {
          before,
          refused,
          fetched,
          state: await ctx.device.getState(t),
          now: await requireCompose(ctx, t).containers(t),
        };
        // Only now: once the faults are gone the next poll may take the honest manifest and start
        // replacing containers, which must not reach what this step observed.
        ctx.wfm.clearFaults();
        out[step.key] = obs;
        t.note(
          `refusals scenario, ${step.item}: GetState manifestVersion ${obs.state.manifestVersion}, deployments [${obs.state.deployments.map((d) => d.deploymentId).join(", ")}]`,
        );
        if (fetched && stateKeptViolations(step.item, obs).length > 0) {
          t.note(`the device did not keep its state (${step.item}): deploying the baseline afresh`);
          before = await establishBaseline(ctx, t, a, served);
        } else {
          before = { ...before, held: obs.state.deployments.map((d) => d.deploymentId) };
          before.lastErrors = obs.state.lastErrors;
        }
      }
      return out as RefusalsObservation;
    },
  );
}

/** Judge one step of the refusals scenario (fails with every violation's message). */
async function judgeRefusal(
  ctx: DeviceCtx,
  t: CheckTools,
  key: RefusalStep["key"],
): Promise<RefusalObservation> {
  const obs = (await refusalsScenario(ctx, t))[key];
  const step = REFUSAL_STEPS.find((s) => s.key === key);
  if (!obs.fetched) return obs;
  for (const v of stateKeptViolations(step?.item ?? key, obs)) t.expect(false, v.message, v.data);
  return obs;
}

const rollbackRefused = deviceCheck({
  id: "device.manifest.rollback-refused",
  title: "A manifest whose manifestVersion is not above the accepted one is not applied",
  requirements: ["device-051"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await judgeRefusal(ctx, t, "rollback");
  },
});

const rollbackLogged = deviceCheck({
  id: "device.manifest.rollback-logged",
  title: "A refused rollback is recorded as an error the operator can see",
  requirements: ["device-051s"],
  level: "SHOULD",
  async run(ctx: DeviceCtx, t: CheckTools) {
    // Judged on the rollback step of the refusals scenario: GetState lastErrors before and after.
    const obs = (await refusalsScenario(ctx, t)).rollback;
    const key = (e: { kind: string; message: string; at?: string }) =>
      `${e.kind}\u0000${e.message}\u0000${e.at ?? ""}`;
    const seen = new Set(obs.before.lastErrors.map(key));
    const fresh = obs.state.lastErrors.filter((e) => !seen.has(key(e)));
    t.expect(
      fresh.length > 0,
      `item 51 (SHOULD): refusing a manifest that reused manifestVersion ${obs.before.version} should be logged as a security event; GetState lastErrors shows no new entry`,
      { lastErrors: obs.state.lastErrors },
    );
    t.note(`logged: ${fresh.map((e) => `${e.kind}: ${e.message}`).join("; ")}`);
  },
});

const deploymentDigestMismatch = deviceCheck({
  id: "device.manifest.deployment-digest-mismatch",
  title: "A deployment YAML whose bytes do not match its digest aborts the whole update",
  requirements: ["device-052"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await judgeRefusal(ctx, t, "deployment-digest");
  },
});

const bundleDigestMismatch = deviceCheck({
  id: "device.manifest.bundle-digest-mismatch",
  title: "A bundle whose bytes do not match its digest aborts the whole update",
  requirements: ["device-052"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const { fetched } = await judgeRefusal(ctx, t, "bundle-digest");
    if (!fetched)
      t.skip(
        "the device fetched the deployment YAMLs one by one, never the bundle: nothing to verify",
      );
  },
});

const digestAlgorithm = deviceCheck({
  id: "device.manifest.unsupported-digest-algorithm",
  title: "A manifest with a non-sha256 digest is invalid and not applied",
  requirements: ["device-053"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await judgeRefusal(ctx, t, "digest-algorithm");
  },
});

const sizeBytesIgnored = deviceCheck({
  id: "device.manifest.size-bytes-not-integrity",
  title: "Wrong sizeBytes with correct digests is still accepted and deployed",
  requirements: ["device-058"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    ctx.wfm.inject({ kind: "size-bytes-wrong" });
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    const { manifest, fetchSeq } = await publishAndFetch(ctx, t, [a]);
    await settleAfter(ctx, t, fetchSeq);
    // A refusal shows at once in what the device holds; a deployment takes seconds to start.
    const state = await ctx.device.getState(t);
    t.note(
      `GetState after the manifest was processed: manifestVersion ${state.manifestVersion}, deployments [${state.deployments.map((d) => d.deploymentId).join(", ")}]`,
    );
    // GetState is how the driver contract exposes the accepted manifest; holding neither the
    // version nor the deployment after the device's next poll means it refused the manifest.
    const refused =
      state.manifestVersion !== manifest.manifestVersion ||
      !state.deployments.some((d) => d.deploymentId === a.deploymentId);
    t.expect(
      !refused,
      `item 58: sizeBytes is advisory: with correct digests and wrong sizeBytes manifestVersion ${manifest.manifestVersion} must be accepted, but the device holds manifestVersion ${state.manifestVersion} with deployments [${state.deployments.map((d) => d.deploymentId).join(", ")}]`,
      { lastErrors: state.lastErrors },
    );
    // deployRunning fails with the containers seen when the deployment never comes up.
    await deployRunning(ctx, t, a, [], { published: manifest });
  },
});

/** Wait for `n` manifest GETs after seq (or the timeout) and return them. */
async function pollsAfter(ctx: DeviceCtx, t: CheckTools, seq: number, n: number) {
  return ctx.wfm.waitFor(
    t,
    `${n} manifest polls by the device`,
    () => {
      const polls = ctx.wfm.requests().filter((r) => r.seq > seq && isManifestGet(r));
      return polls.length >= n ? polls : undefined;
    },
    10_000,
  );
}

const ifNoneMatch = deviceCheck({
  id: "device.manifest.if-none-match",
  title: "After accepting a manifest the device polls with If-None-Match set to its ETag",
  requirements: ["device-054"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const { manifest, fetchSeq } = await publishAndFetch(ctx, t, []);
    // The first poll may already be on its way while the device stores the manifest.
    const polls = await pollsAfter(ctx, t, fetchSeq, 2);
    const second = polls[1];
    const got = second ? header(second, "if-none-match") : undefined;
    t.expect(
      carries(got, manifest.etag),
      `item 54: polls after accepting manifestVersion ${manifest.manifestVersion} must send If-None-Match: ${manifest.etag}; got ${got === undefined ? "no If-None-Match" : `If-None-Match: ${got}`}`,
    );
    t.note(`the poll was answered ${second?.status}`);
  },
});

const persistsRestart = deviceCheck({
  id: "device.manifest.state-persists-restart",
  title:
    "manifestVersion and ETag survive a restart: the first poll carries the ETag and a lower version is still refused",
  requirements: ["device-054", "device-051"],
  features: ["restart"],
  timeoutMs: 60_000,
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    if (!ctx.device.restart)
      t.skip("the harness did not launch the device, so it cannot restart it");
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    const { manifest, containers } = await deployRunning(ctx, t, a);
    await ctx.wfm.waitFor(
      t,
      "a poll answered 304 (the device holds the manifest)",
      () => ctx.wfm.requests().find((r) => isManifestGet(r) && r.status === 304),
      10_000,
    );
    const from = lastSeq(ctx);
    await ctx.device.restart(t);
    const [first] = await pollsAfter(ctx, t, from, 1);
    const got = first ? header(first, "if-none-match") : undefined;
    t.expect(
      carries(got, manifest.etag),
      `item 54: after a restart the first poll must carry the persisted ETag ${manifest.etag}; got ${got === undefined ? "no If-None-Match" : `If-None-Match: ${got}`}`,
    );
    const b = planDeployment(ctx, [runningPlan(ctx)]);
    ctx.wfm.inject({ kind: "manifest-version", version: manifest.manifestVersion });
    const { fetchSeq } = await publishAndFetch(ctx, t, [a, b]);
    await settleAfter(ctx, t, fetchSeq);
    // Observe state and engine while the lie is still served: after clearFaults the next poll
    // takes the honest manifest (with b), which must not leak into this verdict.
    const state = await ctx.device.getState(t);
    t.expect(
      !state.deployments.some((d) => d.deploymentId === b.deploymentId) &&
        (state.manifestVersion === undefined || state.manifestVersion === manifest.manifestVersion),
      `item 54/51: after a restart a manifest reusing manifestVersion ${manifest.manifestVersion} (not above the persisted one) must be refused, but the device took it (GetState: manifestVersion ${state.manifestVersion}, deployments ${state.deployments.map((d) => d.deploymentId).join(", ")})`,
    );
    const engine = requireCompose(ctx, t);
    const now = await engine.containers(t);
    ctx.wfm.clearFaults();
    const appeared = containersOf(now, b.deploymentId);
    t.expect(
      appeared.length === 0,
      `item 54/51: after a restart a manifest reusing manifestVersion ${manifest.manifestVersion} (not above the persisted one) must be refused, but deployment ${b.deploymentId} appeared`,
      { containers: appeared.map(brief) },
    );
    const running = new Set(now.filter(isRunning).map((c) => c.id));
    t.note(
      `containers of the accepted deployment still running after restart: ${containers.filter((c) => running.has(c.id)).length}/${containers.length}`,
    );
  },
});

const notFoundNotDeletion = deviceCheck({
  id: "device.manifest.artifact-404-not-deletion",
  title: "A 404 on a digest URL is not a deletion: the running workload stays",
  requirements: ["device-055"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const engine = requireCompose(ctx, t);
    const a = planDeployment(ctx, [runningPlan(ctx)]);
    const { containers } = await deployRunning(ctx, t, a);
    // A new revision of the same deployment whose YAML (and bundle) cannot be fetched.
    const revised = planDeployment(ctx, [runningPlan(ctx)], {
      deploymentId: a.deploymentId,
      name: `${a.name}-r2`,
    });
    ctx.wfm.inject({ kind: "artifact-404", deploymentId: a.deploymentId });
    const { fetchSeq } = await publishAndFetch(ctx, t, [revised]);
    await ctx.wfm.waitFor(
      t,
      "the device to request the new revision (answered 404)",
      () =>
        ctx.wfm.requests().find((r) => r.seq > fetchSeq && r.method === "GET" && r.status === 404),
      10_000,
    );
    await settleAfter(ctx, t, fetchSeq);
    // Judge the engine before clearing: once the YAML is fetchable again the next poll may start
    // replacing the containers with the revision, which is not a deletion.
    const now = await engine.containers(t);
    ctx.wfm.clearFaults();
    const running = new Set(now.filter(isRunning).map((c) => c.id));
    const gone = containers.filter((c) => isRunning(c) && !running.has(c.id));
    t.expect(
      gone.length === 0,
      `item 55: a 404 on a digest URL must not be treated as deletion, but the running containers of deployment ${a.deploymentId} were stopped or removed: ${gone
        .map((c) => c.name)
        .join(", ")}`,
      { now: containersOf(now, a.deploymentId).map(brief) },
    );
  },
});

const unknownKeysIgnored = deviceCheck({
  id: "device.manifest.unknown-keys-ignored",
  title: "Unknown parameter keys and x-extensions in an ApplicationDeployment are ignored",
  requirements: ["device-056"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    const a = planDeployment(ctx, [runningPlan(ctx)], {
      extensions: true,
      mutate: (doc) => {
        // A parameter no description of the device's knowledge names, with an extra member.
        doc.setIn(["spec", "parameters", "conformance-unknown-key"], {
          value: "ignored",
          targets: [{ pointer: "MARGO_CONFORMANCE_UNKNOWN", components: ["app"] }],
        });
        doc.setIn(["metadata", "labels"], { "conformance.margo.org/probe": "1" });
      },
    });
    t.note("YAML carries x-conformance-extensions at spec, deploymentProfile and component level");
    await deployRunning(ctx, t, a);
  },
});

export const manifestChecks: Check<DeviceCtx>[] = [
  rollbackRefused,
  rollbackLogged,
  deploymentDigestMismatch,
  bundleDigestMismatch,
  digestAlgorithm,
  sizeBytesIgnored,
  ifNoneMatch,
  persistsRestart,
  notFoundNotDeletion,
  unknownKeysIgnored,
];
