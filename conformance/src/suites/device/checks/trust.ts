/**
 * device.trust: trust bundle refresh (items 20-23). The device is configured with the
 * instrumented WFM's bundle endpoint (trust_bundle_url); the harness serves empty, rotated,
 * regressed and decorated bundles and judges which server identity the device trusts afterwards,
 * i.e. whether it talks to the WFM at all, never what it reports.
 */
import { generateKeyPairSync } from "node:crypto";
import { encodeAnchorsBundle } from "@margo/proto/identity";
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, RecordedRequest } from "../context.js";
import { deviceCheck, pause } from "./support.js";
import {
  fetchedProbe,
  isBundleGet,
  isManagementRequest,
  maxSeq,
  publishProbe,
  refusalWindow,
  softWait,
} from "./tls-support.js";

/**
 * Refresh hint the checks serve: 1 s, so a device that honours it refreshes within about a second
 * (the self-conformance launch sets the reference agent's refresh floor to 1 s).
 */
const HINT_S = 1;
/**
 * How long after a retrieval the device gets for the next one. Devices may floor very short
 * hints so a 1 s hint cannot turn them into a busy loop (the reference agent's default floor is
 * 5 s); the bound tolerates a floor of up to ten times the hint plus slack, and only a device
 * still silent after that has clearly ignored the hint. A device that refreshes sooner is judged
 * sooner: the wait ends at its request.
 */
const REFRESH_MS = HINT_S * 10_000 + 2_000;

function bundleDoc(
  ctx: DeviceCtx,
  roots: Array<"trusted" | "untrusted">,
  sequence: bigint,
): string {
  return encodeAnchorsBundle(
    roots.map((r) => ctx.wfm.trustAnchorDer(r)),
    { sequence, refreshHintSeconds: HINT_S },
  ).toString("utf8");
}

/** Wait for a bundle GET after seq (the device fetched what is served now). */
function nextBundleGet(ctx: DeviceCtx, t: CheckTools, afterSeq: number, what: string) {
  return ctx.wfm.waitFor(
    t,
    what,
    () => ctx.wfm.requests().find((r) => r.seq > afterSeq && isBundleGet(r)),
    REFRESH_MS,
  );
}

/**
 * Serve `first`, configure the device with the bundle URL and wait for its first retrieval: from
 * then on the device holds `first` and refreshes every HINT_S.
 */
async function startRefreshing(
  ctx: DeviceCtx,
  t: CheckTools,
  first: string,
  cacheControl?: string,
): Promise<RecordedRequest> {
  ctx.wfm.serveBundle(first, cacheControl ? { cacheControl } : {});
  const seq = maxSeq(ctx);
  await ctx.device.configure(t, { withBundleUrl: true });
  return nextBundleGet(
    ctx,
    t,
    seq,
    `the device's first GET of the trust bundle at trust_bundle_url ${ctx.wfm.bundleUrl}`,
  );
}

/** After the retrieval: give the device a moment to take the document into use (or refuse it). */
const digest = (t: CheckTools) => pause(t, 300);

/** Present `kind` and show the device talks to the WFM (a Management Interface request) after. */
async function talksTo(
  ctx: DeviceCtx,
  t: CheckTools,
  kind: "good" | "untrusted-ca",
  failure: string,
) {
  const seq = maxSeq(ctx);
  await ctx.wfm.presentIdentity(kind);
  const r = await ctx.wfm
    .waitFor(
      t,
      `a request of the device to the WFM presenting the ${kind} identity`,
      () => ctx.wfm.requests().find((q) => q.seq > seq && isManagementRequest(q)),
      10_000,
    )
    .catch(() => t.fail(failure, { tlsFailures: ctx.wfm.tlsFailures().slice(-5) }));
  return r;
}

const emptyKept = deviceCheck({
  id: "device.trust.empty-bundle-keeps-old",
  title: "A bundle with no X.509 anchors is refused and the previous anchors stay in use",
  requirements: ["device-021"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await startRefreshing(
      ctx,
      t,
      `{"keys":[],"spiffe_sequence":2,"spiffe_refresh_hint":${HINT_S}}`,
    );
    t.note("the bundle endpoint served a bundle with zero keys (spiffe_sequence 2)");
    await digest(t);
    // New connections only: an accepted empty bundle must not hide behind a live keep-alive.
    const seq = maxSeq(ctx);
    await ctx.wfm.presentIdentity("good");
    const probe = publishProbe(ctx);
    await ctx.wfm
      .waitFor(
        t,
        "the device to fetch a new deployment with its previous anchors",
        () => fetchedProbe(ctx, probe, seq),
        15_000,
      )
      .catch(() =>
        t.fail(
          "after the bundle endpoint served a bundle with zero X.509 anchors the device no longer fetched from the WFM its previous anchors trust: item 21 requires refusing that bundle and keeping the previous one",
          { tlsFailures: ctx.wfm.tlsFailures().slice(-5) },
        ),
      );
  },
});

const replaces = deviceCheck({
  id: "device.trust.rotation-replaces-anchors",
  title: "An accepted bundle replaces the anchors (the old root is no longer trusted)",
  requirements: ["device-022"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await startRefreshing(ctx, t, bundleDoc(ctx, ["untrusted"], 2n));
    t.note("the bundle endpoint served a rotated bundle: the new root only, spiffe_sequence 2");
    await digest(t);
    await talksTo(
      ctx,
      t,
      "untrusted-ca",
      "after a rotated bundle (new root only, higher spiffe_sequence) the device did not trust the WFM's certificate from the new root: it did not accept a valid new bundle (item 22)",
    );
    const from = Date.now();
    const seq = maxSeq(ctx);
    await ctx.wfm.presentIdentity("good");
    t.note("the WFM presents a certificate of the old root again");
    await refusalWindow(ctx, t, from);
    const through = ctx.wfm.requests().filter((r) => r.seq > seq && isManagementRequest(r));
    t.expect(
      through.length === 0,
      `after rotating to a bundle holding only the new root the device still accepted a certificate of the old root (${through.length} request(s)): item 22 requires replacing the anchors, not merging them`,
      { requests: through.map((r) => `${r.method} ${r.path}`) },
    );
  },
});

const regressed = deviceCheck({
  id: "device.trust.regressed-sequence-refused",
  title: "A bundle whose spiffe_sequence went backwards is refused",
  requirements: ["device-023s"],
  level: "SHOULD",
  async run(ctx: DeviceCtx, t: CheckTools) {
    await startRefreshing(ctx, t, bundleDoc(ctx, ["untrusted"], 0n));
    t.note("provisioned bundle: spiffe_sequence 1; served: a new root at spiffe_sequence 0");
    await digest(t);
    await talksTo(
      ctx,
      t,
      "good",
      "after a bundle with spiffe_sequence 0 (the device was provisioned with 1) the device no longer trusted the WFM's certificate from the previous root: it accepted a regressed bundle (item 23 SHOULD reject it)",
    );
  },
});

const ignoresUnknown = deviceCheck({
  id: "device.trust.ignores-unknown-and-jwt",
  title: "Unknown bundle fields and jwt-svid keys are ignored; the x509-svid anchors are used",
  requirements: ["device-020"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const doc = JSON.parse(bundleDoc(ctx, ["untrusted"], 2n)) as {
      keys: Array<Record<string, unknown>>;
      [k: string]: unknown;
    };
    const jwt = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      format: "jwk",
    });
    doc.keys = [
      { ...jwt, use: "jwt-svid", kid: "conformance-jwt" },
      ...doc.keys.map((k) => ({ ...k, "x-conformance-member": "ignore me" })),
    ];
    doc["x-conformance-unknown"] = { nested: [1, 2, 3] };
    doc.spiffe_unknown_future_field = true;
    await startRefreshing(ctx, t, JSON.stringify(doc));
    t.note("served: a jwt-svid key, unknown members, and the x509-svid key of a new root");
    await digest(t);
    await talksTo(
      ctx,
      t,
      "untrusted-ca",
      "a bundle with a jwt-svid key and unknown members (x509-svid key of a new root, higher sequence) was not taken into use: item 20 requires ignoring unknown fields and jwt-svid keys",
    );
  },
});

/** Wait for two refreshes after the first retrieval and judge their spacing against the hint. */
async function refreshesAtHint(
  ctx: DeviceCtx,
  t: CheckTools,
  cacheControl: string | undefined,
  failWhy: string,
) {
  // Sequence 2: a new bundle (same anchors), so the device takes its hint into use.
  const first = await startRefreshing(ctx, t, bundleDoc(ctx, ["trusted"], 2n), cacheControl);
  const second = await nextBundleGet(
    ctx,
    t,
    first.seq,
    `a refresh of the trust bundle within ${REFRESH_MS} ms (hint ${HINT_S} s)`,
  ).catch(() => t.fail(failWhy));
  // Record the spacing: a device far slower than the hint (but inside the floor tolerance) shows.
  t.note(
    `refetched ${second.at - first.at} ms after the first retrieval (hint ${HINT_S * 1000} ms; answer ${second.status})`,
  );
}

const refreshHint = deviceCheck({
  id: "device.trust.refresh-at-hint",
  title: "The device refreshes the bundle at spiffe_refresh_hint",
  requirements: ["device-023s"],
  level: "SHOULD",
  async run(ctx: DeviceCtx, t: CheckTools) {
    await refreshesAtHint(
      ctx,
      t,
      undefined,
      `the bundle said spiffe_refresh_hint ${HINT_S} s but the device did not fetch it again within ${REFRESH_MS} ms: that leaves room for a refresh floor of up to ${REFRESH_MS / 1000 - 2} s, so the device ignored the hint (item 23 SHOULD refresh at the hint)`,
    );
  },
});

const cacheNoDefer = deviceCheck({
  id: "device.trust.cache-does-not-defer-refresh",
  title: "HTTP caching (max-age) does not defer a bundle refresh that is due",
  requirements: ["device-023"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    // Item 23 MUST is only that caching not defer a DUE refresh; when the refresh falls due is
    // the SHOULD (the hint, device.trust.refresh-at-hint). So first learn, without any
    // Cache-Control, whether this device refreshes at the hint at all; only then does silence
    // under max-age show that the cache deferred it.
    const first = await startRefreshing(ctx, t, bundleDoc(ctx, ["trusted"], 2n));
    const refetch = () => ctx.wfm.requests().find((r) => r.seq > first.seq && isBundleGet(r));
    await softWait(t, () => refetch() !== undefined, REFRESH_MS);
    const control = refetch();
    if (!control)
      t.skip(
        `without Cache-Control the device did not refresh the bundle within ${REFRESH_MS} ms of spiffe_refresh_hint ${HINT_S} s, so no refresh is due in this window and max-age cannot be shown to defer one (the hint itself is device.trust.refresh-at-hint, item 23 SHOULD)`,
      );
    t.note(
      `without Cache-Control the device refetched ${control.at - first.at} ms after the first retrieval`,
    );
    // Same document, now offered with a long max-age: the next GET receives it, the one after
    // must still come at the hint.
    ctx.wfm.serveBundle(bundleDoc(ctx, ["trusted"], 2n), { cacheControl: "max-age=3600" });
    const cached = await nextBundleGet(
      ctx,
      t,
      maxSeq(ctx),
      "a GET of the trust bundle answered with Cache-Control: max-age=3600",
    ).catch(() =>
      t.fail(
        `the device refreshed the bundle at the hint without Cache-Control but stopped fetching within ${REFRESH_MS} ms of the next due refresh (item 23)`,
      ),
    );
    const after = await nextBundleGet(
      ctx,
      t,
      cached.seq,
      `a refresh of the trust bundle after the max-age=3600 answer within ${REFRESH_MS} ms`,
    ).catch(() =>
      t.fail(
        `without Cache-Control the device refreshed ${control.at - first.at} ms after a retrieval (hint ${HINT_S} s), but after an answer with Cache-Control: max-age=3600 it did not fetch again within ${REFRESH_MS} ms: the max-age deferred a due refresh, which item 23 forbids`,
      ),
    );
    t.note(
      `with max-age=3600 the device refetched ${after.at - cached.at} ms after the cached answer (${after.status})`,
    );
  },
});

export const trustChecks: readonly Check<DeviceCtx>[] = [
  ignoresUnknown,
  emptyKept,
  replaces,
  regressed,
  refreshHint,
  cacheNoDefer,
];
