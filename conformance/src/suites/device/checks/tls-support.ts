/**
 * Shared steps of the transport, identity and trust checks: recognising the device's attempts to
 * connect and showing that it refused a server without sleeping for seconds (its next attempts
 * plus a short settle are the evidence).
 */
import type { CheckTools } from "../../../core/types.js";
import type { DeviceCtx, RecordedRequest } from "../context.js";
import { pause, planDeployment, runningPlan } from "./support.js";

/** A request on the Management Interface (not the bundle endpoint). */
export function isManagementRequest(r: RecordedRequest): boolean {
  return r.path.startsWith("/api/");
}

/** The bundle endpoint's GETs. */
export function isBundleGet(r: RecordedRequest): boolean {
  return r.method === "GET" && r.path.startsWith("/.well-known/spiffe/");
}

/** Failed or request-less connections to `server` since `from` (ms epoch). */
export function attemptsSince(
  ctx: DeviceCtx,
  from: number,
  server: "management" | "bundle" = "management",
) {
  return ctx.wfm.tlsFailures().filter((f) => f.at >= from && f.server === server);
}

export const maxSeq = (ctx: DeviceCtx) =>
  ctx.wfm.requests().reduce((m, r) => Math.max(m, r.seq), 0);

/** How long the device gets for its first attempt after a change (covers a retry backoff). */
const FIRST_ATTEMPT_MS = 10_000;
/** How long we wait, without failing, for a second attempt (a device without backoff makes it fast). */
const SECOND_ATTEMPT_MS = 2_000;

/**
 * After a change at `from`: wait for the device's next connection attempt (refused or not), then
 * give it a second one and a short settle. Returns the number of refused attempts seen. Never
 * fails by itself: the caller judges what came through.
 */
export async function refusalWindow(ctx: DeviceCtx, t: CheckTools, from: number): Promise<number> {
  const seq0 = maxSeq(ctx);
  const seen = () =>
    attemptsSince(ctx, from).length + ctx.wfm.requests().filter((r) => r.seq > seq0).length;
  await softWait(t, () => seen() >= 1, FIRST_ATTEMPT_MS);
  await softWait(t, () => seen() >= 2, SECOND_ATTEMPT_MS);
  await pause(t, 300);
  return attemptsSince(ctx, from).length;
}

/** Poll until cond or the time is up; never fails (absence is judged by the caller). */
export async function softWait(t: CheckTools, cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await pause(t, 25);
  }
  return cond();
}

/** Publish one deployment of the running component; returns its id and YAML URL. */
export function publishProbe(ctx: DeviceCtx) {
  const d = planDeployment(ctx, [runningPlan(ctx)]);
  const m = ctx.wfm.publish([d]);
  const ref = m.deployments.find((x) => x.deploymentId === d.deploymentId);
  return {
    deploymentId: d.deploymentId,
    url: ref?.url ?? "",
    bundleUrl: m.bundle?.url ?? "",
    manifest: m,
  };
}

/** Did the device fetch the probe's YAML or bundle (after seq)? */
export function fetchedProbe(
  ctx: DeviceCtx,
  probe: { url: string; bundleUrl: string },
  afterSeq: number,
): RecordedRequest | undefined {
  return ctx.wfm
    .requests()
    .find(
      (r) =>
        r.seq > afterSeq &&
        r.method === "GET" &&
        (r.path === probe.url || r.path === probe.bundleUrl) &&
        r.status === 200,
    );
}
