/**
 * device.retry: how the device backs off when the WFM asks it to (digest 4.4, 9; item 86). The
 * instrumented WFM answers one request with 429/503 + Retry-After; the gap to the device's next
 * request of the same kind is measured at the WFM.
 *
 * Not checked: a non-retryable problem (retryable: false, backoffStrategy: none) on a status POST
 * is not hammered. The instrumented WFM's faults only answer 429/503, and telling "not hammered"
 * from a slow regular retry would need seconds of observation.
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, RecordedRequest } from "../context.js";
import {
  deviceCheck,
  isManifestGet,
  lastSeq,
  planDeployment,
  publishAndFetch,
  requireCompose,
  runningPlan,
} from "./support.js";

/**
 * 1 s still separates a device that honours Retry-After from one that does not: the harness
 * configures a 200 ms poll period, so an ignoring device is back after ~200 ms (five times sooner).
 */
const RETRY_AFTER_S = 1;
/** Arrival times are taken at the WFM; a device that waits exactly Retry-After may land a hair early. */
const TOLERANCE_MS = 50;

async function measureGap(
  ctx: DeviceCtx,
  t: CheckTools,
  from: number,
  status: 429 | 503,
  same: (r: RecordedRequest) => boolean,
  what: string,
  /** Narrows `same` to retries of the refused request (default: any request of the kind). */
  retryOf: (refused: RecordedRequest) => (r: RecordedRequest) => boolean = () => () => true,
): Promise<void> {
  const refused = await ctx.wfm.waitFor(
    t,
    `the device's ${what} answered ${status}`,
    () => ctx.wfm.requests().find((r) => r.seq > from && same(r) && r.status === status),
    15_000,
  );
  const next = await ctx.wfm.waitFor(
    t,
    `the device to retry its ${what} after Retry-After: ${RETRY_AFTER_S}`,
    () => {
      const isRetry = retryOf(refused);
      return ctx.wfm.requests().find((r) => r.seq > refused.seq && same(r) && isRetry(r));
    },
    RETRY_AFTER_S * 1000 + 10_000,
  );
  const gap = next.at - refused.at;
  t.note(`${what}: ${status} at ${refused.at}, next attempt ${gap} ms later`);
  t.expect(
    gap >= RETRY_AFTER_S * 1000 - TOLERANCE_MS,
    `item 86: after ${status} with Retry-After: ${RETRY_AFTER_S} the device must not retry its ${what} before ${RETRY_AFTER_S} s; it came back after ${gap} ms`,
  );
}

function manifestRetry(status: 429 | 503) {
  return deviceCheck({
    id: `device.retry.manifest-retry-after-${status}`,
    title: `No manifest poll before Retry-After elapsed after a ${status}`,
    requirements: ["device-086"],
    async run(ctx: DeviceCtx, t: CheckTools) {
      const from = lastSeq(ctx);
      ctx.wfm.inject({
        kind: "http-status",
        pathPrefix: "/api/v1/deployments",
        method: "GET",
        status,
        retryAfterSeconds: RETRY_AFTER_S,
        times: 1,
      });
      await measureGap(ctx, t, from, status, isManifestGet, "GET /api/v1/deployments");
    },
  });
}

function isStatusPost(r: RecordedRequest): boolean {
  return (
    r.method === "POST" &&
    /^\/api\/v1\/deployments\/[^/]+\/status$/.test(r.path.split("?")[0] ?? "")
  );
}

/** deploymentId and status.state of a status POST body (lenient: undefined when unparsable). */
function statusKey(r: RecordedRequest): string | undefined {
  try {
    const body = JSON.parse(r.body.toString("utf8")) as {
      deploymentId?: unknown;
      status?: { state?: unknown };
    };
    return JSON.stringify([r.path.split("?")[0], body.deploymentId, body.status?.state]);
  } catch {
    return undefined;
  }
}

/**
 * The retry of a refused status POST is the POST carrying the same deploymentId and state: a device
 * honouring Retry-After may still send its NEXT state change (another deployment or state) sooner.
 */
function sameStatus(refused: RecordedRequest) {
  const key = statusKey(refused);
  return (r: RecordedRequest) => key !== undefined && statusKey(r) === key;
}

const statusRetry = deviceCheck({
  id: "device.retry.status-retry-after-503",
  title: "No status POST retry before Retry-After elapsed after a 503",
  requirements: ["device-086"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    requireCompose(ctx, t);
    const from = lastSeq(ctx);
    ctx.wfm.inject({
      kind: "http-status",
      pathPrefix: "/api/v1/deployments/",
      method: "POST",
      status: 503,
      retryAfterSeconds: RETRY_AFTER_S,
      times: 1,
    });
    await publishAndFetch(ctx, t, [planDeployment(ctx, [runningPlan(ctx)])]);
    await measureGap(
      ctx,
      t,
      from,
      503,
      isStatusPost,
      "POST .../status (same deploymentId and state)",
      sameStatus,
    );
  },
});

export const retryChecks: Check<DeviceCtx>[] = [
  manifestRetry(429),
  manifestRetry(503),
  statusRetry,
];
