/**
 * Shared steps of the device-state checks (capabilities, manifest, reconcile, status, retry):
 * writing ApplicationDeployment YAML, recognising the harness's containers on the Compose host,
 * and waiting on observed events instead of fixed sleeps. Nothing here judges: checks do.
 */
import { randomUUID } from "node:crypto";
import { encodeApplicationDeployment } from "@margo/proto/wire";
import { parseDocument } from "yaml";
import type { Check, CheckTools, Level } from "../../../core/types.js";
import type {
  ComponentRef,
  DeviceCtx,
  EngineContainer,
  ObservedEngine,
  PublishedManifest,
  ReceivedStatus,
  RecordedRequest,
  ServedDeployment,
} from "../context.js";

/**
 * The environment variable every harness deployment sets (through a Compose parameter) on each
 * component: `<deploymentId>/<component>`. Compose project and container names are not specified
 * (digest 11), so this is how the harness tells whose container it is looking at.
 */
export const MARK_ENV = "MARGO_CONFORMANCE_MARK";

/** The six rc.3 states, lowercase (item 67). */
export const STATES = [
  "pending",
  "installing",
  "installed",
  "failed",
  "removing",
  "removed",
] as const;
export type State = (typeof STATES)[number];

/**
 * Severity for item 69, most severe first. rc.3 prints `removing` twice and omits `removed`
 * (digest 7, open question 6); the second `removing` is read as `removed`.
 */
export const PRECEDENCE: readonly State[] = [
  "failed",
  "removing",
  "installing",
  "pending",
  "removed",
  "installed",
];

/** How long a device gets to deploy or remove a simple Compose workload. */
export const CONVERGE_MS = 25_000;
/** Pause after the device's next request when showing that something did NOT happen. */
export const SETTLE_MS = 400;

/** Builds a check record with the suite and family filled in from the id. */
export function deviceCheck(c: {
  id: string;
  title: string;
  requirements: string[];
  level?: Level;
  features?: string[];
  timeoutMs?: number;
  run: Check<DeviceCtx>["run"];
}): Check<DeviceCtx> {
  const family = c.id.split(".").slice(0, 2).join(".");
  return {
    id: c.id,
    title: c.title,
    suite: "device",
    family,
    requirements: c.requirements,
    level: c.level ?? "MUST",
    ...(c.features ? { features: c.features } : {}),
    timeoutMs: c.timeoutMs ?? 45_000,
    run: c.run,
  };
}

/** One component of a deployment the harness writes. */
export interface ComponentPlan {
  name: string;
  ref: ComponentRef;
  wait?: boolean;
  timeout?: string;
}

/** A deployment the harness wrote: what is served plus what the checks need to judge it. */
export interface PlannedDeployment extends ServedDeployment {
  name: string;
  components: string[];
}

function ociRepository(ref: ComponentRef): string {
  return ref.repository.startsWith("oci://") ? ref.repository : `oci://${ref.repository}`;
}

/**
 * An ApplicationDeployment for the configured device, fresh UUID, one mark parameter per
 * component. `mutate` edits the YAML tree after encoding, for documents the codec would not
 * write (unknown keys for item 56).
 */
export function planDeployment(
  ctx: DeviceCtx,
  components: ComponentPlan[],
  opts: {
    deploymentId?: string;
    name?: string;
    extensions?: boolean;
    mutate?: (doc: ReturnType<typeof parseDocument>) => void;
  } = {},
): PlannedDeployment {
  const id = opts.deploymentId ?? randomUUID();
  const name = opts.name ?? `conf-${id.slice(0, 8)}`;
  const ext = (what: string) =>
    opts.extensions ? { "x-conformance-extensions": { probe: what, nested: { n: 1 } } } : {};
  const parameters: Record<
    string,
    { value: string; targets: { pointer: string; components: string[] }[] }
  > = {};
  components.forEach((c, i) => {
    parameters[`conformance-mark-${i}`] = {
      value: `${id}/${c.name}`,
      targets: [{ pointer: MARK_ENV, components: [c.name] }],
    };
  });
  const bytes = encodeApplicationDeployment({
    id,
    metadata: { name, namespace: "margo-conformance", deviceId: ctx.device.deviceId, labels: {} },
    spec: {
      applicationId: "margo-conformance-app",
      deploymentProfile: {
        type: "compose",
        components: components.map((c) => ({
          name: c.name,
          properties: {
            repository: ociRepository(c.ref),
            revision: c.ref.revision,
            wait: c.wait ?? true,
            ...(c.timeout ? { timeout: c.timeout } : {}),
          },
          extensions: ext(`component ${c.name}`),
        })),
        extensions: ext("deploymentProfile"),
      },
      parameters,
      extensions: ext("spec"),
    },
  });
  let yaml = Buffer.from(bytes).toString("utf8");
  if (opts.mutate) {
    const doc = parseDocument(yaml);
    opts.mutate(doc);
    yaml = doc.toString();
  }
  return { deploymentId: id, yaml, name, components: components.map((c) => c.name) };
}

/** The component the harness deploys when any running workload will do. */
export function runningPlan(ctx: DeviceCtx, name = "app"): ComponentPlan {
  return { name, ref: ctx.components.running };
}

/** The Compose engine, or skip: these checks judge real containers (device-under-test, digest 11). */
export function requireEngine(ctx: DeviceCtx, t: CheckTools): ObservedEngine {
  if (!ctx.engine) t.skip("the device under test is not a Compose device (no Compose host engine)");
  return ctx.engine;
}

/** Skip unless the device offers Compose deployments (every deploy check uses Compose components). */
export function requireCompose(ctx: DeviceCtx, t: CheckTools): ObservedEngine {
  const engine = requireEngine(ctx, t);
  if (!ctx.info.features.includes("compose"))
    t.skip("the device does not list compose among its deployment types");
  return engine;
}

export function markOf(c: EngineContainer): string | undefined {
  const hit = c.env.find((e) => e.startsWith(`${MARK_ENV}=`));
  return hit?.slice(MARK_ENV.length + 1);
}

/** Containers of one deployment (any state), optionally of one component. */
export function containersOf(
  all: EngineContainer[],
  deploymentId: string,
  component?: string,
): EngineContainer[] {
  return all.filter((c) => {
    const m = markOf(c);
    if (!m) return false;
    return component === undefined
      ? m.startsWith(`${deploymentId}/`)
      : m === `${deploymentId}/${component}`;
  });
}

export function isRunning(c: EngineContainer): boolean {
  return c.state === "running";
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** A short pause (settle after an observed event); aborts with the check. */
export function pause(t: CheckTools, ms = SETTLE_MS): Promise<void> {
  return sleep(ms, t.signal);
}

/**
 * Polls the engine until pred returns a value. On timeout the check FAILS with `what` and the
 * containers last seen: the device did not converge in time, which is the finding.
 */
export async function waitEngine<T>(
  ctx: DeviceCtx,
  t: CheckTools,
  what: string,
  pred: (cs: EngineContainer[]) => T | undefined | false,
  timeoutMs = CONVERGE_MS,
): Promise<T> {
  const engine = requireEngine(ctx, t);
  const deadline = Date.now() + timeoutMs;
  let last: EngineContainer[] = [];
  for (;;) {
    last = await engine.containers(t);
    const v = pred(last);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) {
      t.fail(`timed out after ${timeoutMs} ms waiting for ${what}`, {
        containers: last.map(brief),
      });
    }
    await sleep(200, t.signal);
  }
}

/** What a report shows of a container. */
export function brief(c: EngineContainer) {
  return {
    name: c.name,
    state: c.state,
    exitCode: c.exitCode,
    startedAt: c.startedAt,
    mark: markOf(c),
  };
}

/** Highest request seq seen so far (0 when none): events after it are "after now". */
export function lastSeq(ctx: DeviceCtx): number {
  return ctx.wfm.requests().reduce((m, r) => Math.max(m, r.seq), 0);
}

export function isManifestGet(r: RecordedRequest): boolean {
  return r.method === "GET" && r.path.split("?")[0] === "/api/v1/deployments";
}

/** A GET of a deployment YAML or of the bundle (an artifact fetch). */
export function isArtifactGet(r: RecordedRequest): boolean {
  const p = r.path.split("?")[0] ?? "";
  return (
    r.method === "GET" &&
    (p.startsWith("/api/v1/bundles/") || /^\/api\/v1\/deployments\/[^/]+\/[^/]+$/.test(p))
  );
}

export function header(r: RecordedRequest, name: string): string | undefined {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** True when an If-None-Match value lists this ETag (weak or strong form). */
export function carries(value: string | undefined, etag: string): boolean {
  if (!value) return false;
  return value
    .split(",")
    .map((s) => s.trim().replace(/^W\//, ""))
    .includes(etag);
}

/**
 * Publish and wait until the device has fetched that manifest (a 200 answer to its GET after
 * the publish): the point from which its reaction can be judged.
 */
export async function publishAndFetch(
  ctx: DeviceCtx,
  t: CheckTools,
  deployments: ServedDeployment[],
  timeoutMs = 15_000,
): Promise<{ manifest: PublishedManifest; fetchSeq: number }> {
  const from = lastSeq(ctx);
  const manifest = ctx.wfm.publish(deployments);
  t.note(
    `published manifestVersion ${manifest.manifestVersion} with ${deployments.length} deployment(s)`,
  );
  const got = await ctx.wfm.waitFor(
    t,
    `the device to fetch manifestVersion ${manifest.manifestVersion} (GET /api/v1/deployments answered 200)`,
    () =>
      ctx.wfm.requests().find(
        (r) =>
          r.seq > from &&
          isManifestGet(r) &&
          // A poll already in flight at publish may have been answered with the new manifest.
          (r.status === 200 || carries(header(r, "if-none-match"), manifest.etag)),
      ),
    timeoutMs,
  );
  return { manifest, fetchSeq: got.seq };
}

/**
 * Wait until the device is done with what it fetched at `fetchSeq`: its next manifest poll after
 * the last artifact fetch that followed, then a short settle. Used to show an absence ("nothing
 * was deployed") without sleeping for seconds.
 */
export async function settleAfter(
  ctx: DeviceCtx,
  t: CheckTools,
  fetchSeq: number,
  timeoutMs = 15_000,
): Promise<void> {
  await ctx.wfm.waitFor(
    t,
    "the device's next manifest poll after it processed the manifest",
    () => {
      const after = ctx.wfm.requests().filter((r) => r.seq > fetchSeq);
      const lastArtifact = after
        .filter(isArtifactGet)
        .reduce((m, r) => Math.max(m, r.seq), fetchSeq);
      return after.find((r) => r.seq > lastArtifact && isManifestGet(r));
    },
    timeoutMs,
  );
  await pause(t);
}

/** Statuses the device reported for one deployment, in receipt order. */
export function statusesOf(ctx: DeviceCtx, deploymentId: string): ReceivedStatus[] {
  return ctx.wfm.statuses().filter((s) => s.deploymentId === deploymentId);
}

export function stateOf(s: ReceivedStatus): unknown {
  const st = s.body.status;
  return st && typeof st === "object" ? (st as Record<string, unknown>).state : undefined;
}

/** Wait for a reported status of the deployment in this state (fail on timeout). */
export function waitStatus(
  ctx: DeviceCtx,
  t: CheckTools,
  deploymentId: string,
  state: State | ((s: ReceivedStatus) => boolean),
  timeoutMs = CONVERGE_MS,
): Promise<ReceivedStatus> {
  const pred = typeof state === "string" ? (s: ReceivedStatus) => stateOf(s) === state : state;
  const what = typeof state === "string" ? `a status "${state}"` : "a matching status";
  return ctx.wfm.waitFor(
    t,
    `${what} for deployment ${deploymentId}`,
    () => statusesOf(ctx, deploymentId).find(pred),
    timeoutMs,
  );
}

/** Deploy and wait until every component of it has a running container. */
export async function deployRunning(
  ctx: DeviceCtx,
  t: CheckTools,
  plan: PlannedDeployment,
  others: ServedDeployment[] = [],
  opts: { published?: PublishedManifest } = {},
): Promise<{ manifest: PublishedManifest; containers: EngineContainer[] }> {
  const manifest = opts.published ?? (await publishAndFetch(ctx, t, [...others, plan])).manifest;
  const containers = await waitEngine(
    ctx,
    t,
    `a running container for every component of deployment ${plan.deploymentId} (${plan.components.join(", ")}), recognised by ${MARK_ENV}`,
    (cs) => {
      const mine = containersOf(cs, plan.deploymentId);
      const ok = plan.components.every((n) =>
        containersOf(mine, plan.deploymentId, n).some(isRunning),
      );
      return ok ? mine : undefined;
    },
  );
  return { manifest, containers };
}

/** The record of state the device reports through its driver, for "kept previous state" checks. */
export async function manifestVersionOf(
  ctx: DeviceCtx,
  t: CheckTools,
): Promise<bigint | undefined> {
  return (await ctx.device.getState(t)).manifestVersion;
}

/** How long a report may trail the change it reports once the engine shows the change. */
export const REPORT_MS = 5_000;

const scenarioMemo = new WeakMap<DeviceCtx, Map<string, Promise<unknown>>>();

/**
 * Runs an observation once per suite session and hands the same record to every check that
 * judges it. Deploying is what costs (seconds per Compose up), and several checks of different
 * concerns judge the same install: each still judges only its own concern, and a check run alone
 * runs the scenario itself. A scenario that throws is forgotten, so the next check tries afresh.
 */
export async function shared<T>(
  ctx: DeviceCtx,
  t: CheckTools,
  key: string,
  run: () => Promise<T>,
): Promise<T> {
  let byKey = scenarioMemo.get(ctx);
  if (!byKey) {
    byKey = new Map();
    scenarioMemo.set(ctx, byKey);
  }
  const have = byKey.get(key) as Promise<T> | undefined;
  if (have) {
    t.note(`judged on the "${key}" scenario observed earlier in this run (its evidence is there)`);
    return have;
  }
  const p = run();
  byKey.set(key, p);
  p.catch(() => byKey.delete(key));
  return p;
}

/** Poll `probe` until it returns a value or the time is up (undefined then: no fail, no throw). */
async function within<T>(
  t: CheckTools,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) return undefined;
    await sleep(200, t.signal);
  }
}

/** What the two-component install-then-remove scenario saw. */
export interface PairObservation {
  plan: PlannedDeployment;
  /** manifestVersion that brought the deployment. */
  version: bigint;
  /** Containers once every component ran; undefined when they never all ran in time. */
  installed?: EngineContainer[];
  /** True when no container of it was left after it was dropped from the manifest. */
  removed: boolean;
  /** Every status the device reported for it, in receipt order. */
  statuses: ReceivedStatus[];
}

/**
 * Scenario "pair": a deployment of two running components listed zeta, alpha (the reverse of
 * name order) with wait: true is deployed, then dropped from the manifest. Waits are bounded and
 * never fail here: each judging check decides what a missing step means for its concern.
 */
export function pairScenario(ctx: DeviceCtx, t: CheckTools): Promise<PairObservation> {
  return shared(ctx, t, "pair: install two components, then remove", async () => {
    const engine = requireCompose(ctx, t);
    const plan = planDeployment(ctx, [
      { name: "zeta", ref: ctx.components.running, wait: true },
      { name: "alpha", ref: ctx.components.running, wait: true },
    ]);
    const { manifest } = await publishAndFetch(ctx, t, [plan]);
    const installed = await within(t, CONVERGE_MS, async () => {
      const mine = containersOf(await engine.containers(t), plan.deploymentId);
      return plan.components.every((n) => containersOf(mine, plan.deploymentId, n).some(isRunning))
        ? mine
        : undefined;
    });
    await within(t, REPORT_MS, () =>
      statusesOf(ctx, plan.deploymentId).some((s) => stateOf(s) === "installed"),
    );
    await publishAndFetch(ctx, t, []);
    const removed =
      (await within(
        t,
        CONVERGE_MS,
        async () => containersOf(await engine.containers(t), plan.deploymentId).length === 0,
      )) ?? false;
    await within(t, REPORT_MS, () =>
      statusesOf(ctx, plan.deploymentId).some((s) => stateOf(s) === "removed"),
    );
    return {
      plan,
      version: manifest.manifestVersion,
      ...(installed ? { installed } : {}),
      removed,
      statuses: [...statusesOf(ctx, plan.deploymentId)],
    };
  });
}

/** What the "one component runs, the next exits 1" scenario saw. */
export interface MixedObservation {
  plan: PlannedDeployment;
  version: bigint;
  /** Every status reported for it, in receipt order. */
  statuses: ReceivedStatus[];
  /** True once a failed status came. */
  failedReported: boolean;
  /** Three samples (250 ms apart) of the crashing component's containers after it failed. */
  crashSamples: EngineContainer[][];
  /** True when a container of the crashing component was seen exited non-zero. */
  crashExited: boolean;
}

/**
 * Scenario "mixed": components fine (runs) then crash (exits 1 at once), wait: true. Sync point:
 * a failed status or an exited crash container, whichever comes first.
 */
export function mixedScenario(ctx: DeviceCtx, t: CheckTools): Promise<MixedObservation> {
  return shared(ctx, t, "mixed: one component runs, the next exits 1", async () => {
    const engine = requireCompose(ctx, t);
    const plan = planDeployment(ctx, [
      { name: "fine", ref: ctx.components.running },
      { name: "crash", ref: ctx.components.exitsNonZero },
    ]);
    const { manifest } = await publishAndFetch(ctx, t, [plan]);
    let crashExited = false;
    await within(t, CONVERGE_MS, async () => {
      const crash = containersOf(await engine.containers(t), plan.deploymentId, "crash");
      crashExited ||= crash.some((c) => c.state === "exited" && c.exitCode !== 0);
      return crashExited || statusesOf(ctx, plan.deploymentId).some((s) => stateOf(s) === "failed");
    });
    await within(t, REPORT_MS, () =>
      statusesOf(ctx, plan.deploymentId).some((s) => stateOf(s) === "failed"),
    );
    const crashSamples: EngineContainer[][] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(250, t.signal);
      const crash = containersOf(await engine.containers(t), plan.deploymentId, "crash");
      crashExited ||= crash.some((c) => c.state === "exited" && c.exitCode !== 0);
      crashSamples.push(crash);
    }
    const statuses = [...statusesOf(ctx, plan.deploymentId)];
    return {
      plan,
      version: manifest.manifestVersion,
      statuses,
      failedReported: statuses.some((s) => stateOf(s) === "failed"),
      crashSamples,
      crashExited,
    };
  });
}
