/**
 * wfm.isolation (item 5): every path id resolves within the caller's scope only. Two admitted
 * clients use the SAME deviceId; what one reports, is given or fetches never reaches the other.
 * Setup problems (a manifest that cannot be read, a refused driver call) are errors here: other
 * families judge those.
 */
import { MANIFEST_MEDIA_TYPE, parseJson } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type { WfmClient, WfmCtx } from "../context.js";
import {
  bodyHint,
  capabilitiesBody,
  HarnessSetupError,
  isObject,
  member,
  putCapabilities,
  uniqueDeviceId,
  wfmCheck,
} from "./support.js";

interface Scope {
  text: string;
  deployments: Array<{ deploymentId: string; url: string }>;
  bundleUrl: string | undefined;
  version: string | undefined;
}

async function scopeOf(t: CheckTools, client: WfmClient): Promise<Scope> {
  const res = await client.wire.request(t, {
    method: "GET",
    path: "/api/v1/deployments",
    headers: { accept: MANIFEST_MEDIA_TYPE },
  });
  const tree = parseJson(res.body).value;
  if (res.status !== 200 || !isObject(tree))
    throw new HarnessSetupError(
      `setup: ${client.clientId}'s manifest is not readable (HTTP ${res.status})${bodyHint(res)}`,
    );
  const list = member(tree, "deployments");
  const bundle = member(tree, "bundle");
  const bundleUrl = member(bundle, "url");
  const mv = member(tree, "manifestVersion");
  return {
    text: res.body.toString("utf8"),
    deployments: (Array.isArray(list) ? list : []).flatMap((d) => {
      const id = member(d, "deploymentId");
      const url = member(d, "url");
      return typeof id === "string" && typeof url === "string" ? [{ deploymentId: id, url }] : [];
    }),
    bundleUrl: typeof bundleUrl === "string" ? bundleUrl : undefined,
    version: mv === undefined ? undefined : String(mv),
  };
}

/** Both clients report the same deviceId; client a gets a deployment on it. */
async function sharedDeviceWithDeployment(ctx: WfmCtx, t: CheckTools, short: string) {
  const [a, b] = ctx.clients;
  const deviceId = uniqueDeviceId(short);
  for (const c of [a, b]) {
    const res = await putCapabilities(t, c.wire, deviceId, capabilitiesBody(deviceId));
    if (res.status < 200 || res.status >= 300)
      throw new HarnessSetupError(
        `setup: ${c.clientId} PUT capabilities ${deviceId}: HTTP ${res.status}${bodyHint(res)}`,
      );
  }
  const apps = await ctx.apps(t);
  const { deploymentId } = await ctx.driver.deploy({
    applicationId: apps.single.applicationId,
    version: apps.single.version,
    clientId: a.clientId,
    deviceId,
    ...(apps.single.vendorReference ? { vendorReference: apps.single.vendorReference } : {}),
  });
  const scopeA = await scopeOf(t, a);
  const entry = scopeA.deployments.find((d) => d.deploymentId === deploymentId);
  if (!entry)
    throw new HarnessSetupError(
      `setup: client a's manifest does not list ${deploymentId} the driver created`,
    );
  t.note(`client a got ${deploymentId} on ${deviceId}; client b reported the same deviceId`);
  return { a, b, deviceId, deploymentId, entry, scopeA };
}

export const isolationChecks = [
  wfmCheck({
    id: "wfm.isolation.same-device-id-capabilities-independent",
    title: "Two clients reporting the same deviceId have independent capabilities records",
    requirements: ["wfm-005"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const [a, b] = ctx.clients;
      const deviceId = uniqueDeviceId("isocap");
      const bodyA = capabilitiesBody(deviceId);
      const bodyB = capabilitiesBody(deviceId, { extraProperties: { vendor: "client b vendor" } });
      const ra = await putCapabilities(t, a.wire, deviceId, bodyA);
      if (ra.status < 200 || ra.status >= 300)
        throw new HarnessSetupError(`setup: client a PUT: HTTP ${ra.status}${bodyHint(ra)}`);
      const rb = await putCapabilities(t, b.wire, deviceId, bodyB);
      // Any 2xx: whether it is exactly 201 is wfm.capabilities' concern (item 26), not isolation's.
      t.expect(
        rb.status >= 200 && rb.status < 300,
        `client b's first PUT of deviceId ${deviceId}, already reported by client a, answered ${rb.status}${bodyHint(rb)}; client b must get a record of its own since deviceIds are per client (item 5)`,
      );
      const capA = await ctx.driver.capabilities(a.clientId, deviceId);
      const capB = await ctx.driver.capabilities(b.clientId, deviceId);
      t.expect(capA.found && capB.found, "the driver does not find both records (item 5)");
      t.expect(
        capA.capabilities?.properties?.vendor === "Margo conformance harness" &&
          capB.capabilities?.properties?.vendor === "client b vendor",
        `one client's capabilities replaced the other's: a has vendor ${JSON.stringify(capA.capabilities?.properties?.vendor)}, b has ${JSON.stringify(capB.capabilities?.properties?.vendor)} (item 5)`,
      );
      const del = await b.wire.request(t, {
        method: "DELETE",
        path: `/api/v1/capabilities/${deviceId}`,
      });
      t.expect(
        del.status >= 200 && del.status < 300,
        `client b's DELETE of its own record answered ${del.status}${bodyHint(del)} (item 5: its own record is its to remove)`,
      );
      const after = await ctx.driver.capabilities(a.clientId, deviceId);
      t.expect(
        after.found,
        `client b's DELETE of ${deviceId} removed client a's record too (item 5)`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.isolation.deployments-scoped",
    title: "A deployment for one client is not in another client's manifest for the same deviceId",
    requirements: ["wfm-005"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const s = await sharedDeviceWithDeployment(ctx, t, "isodep");
      const scopeB = await scopeOf(t, s.b);
      t.expect(
        !scopeB.text.includes(s.deploymentId),
        `client b's manifest names client a's deployment ${s.deploymentId} (item 5)`,
      );
      t.expect(
        scopeB.bundleUrl === undefined || scopeB.bundleUrl !== s.scopeA.bundleUrl,
        `client b's manifest points at client a's bundle ${s.scopeA.bundleUrl} (item 5)`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.isolation.artifacts-scoped",
    title: "Another client cannot fetch a client's deployment YAML or bundle by digest (404)",
    requirements: ["wfm-005"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const s = await sharedDeviceWithDeployment(ctx, t, "isoart");
      const own = await s.a.wire.request(t, { method: "GET", path: s.entry.url });
      if (own.status !== 200)
        throw new HarnessSetupError(
          `setup: client a cannot fetch its own YAML: HTTP ${own.status}`,
        );
      const urls = [s.entry.url, ...(s.scopeA.bundleUrl ? [s.scopeA.bundleUrl] : [])];
      for (const url of urls) {
        const res = await s.b.wire.request(t, { method: "GET", path: url });
        t.expect(
          res.status === 404,
          `client b fetching client a's ${url} got HTTP ${res.status}; ids resolve only in the caller's scope, so 404 (item 5)`,
        );
      }
    },
  }),
  wfmCheck({
    id: "wfm.isolation.status-scoped",
    title: "Another client cannot post status for a client's deployment",
    requirements: ["wfm-005"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const s = await sharedDeviceWithDeployment(ctx, t, "isosta");
      const res = await s.b.wire.request(t, {
        method: "POST",
        path: `/api/v1/deployments/${s.deploymentId}/status`,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          deploymentId: s.deploymentId,
          deviceId: s.deviceId,
          adoptedManifestVersion: Number(s.scopeA.version ?? 1),
          status: {
            state: "failed",
            error: { code: "CONFORMANCE", message: "posted by client b" },
          },
          components: [{ name: "hello", state: "failed" }],
        }),
      });
      t.expect(
        res.status >= 400 && res.status < 500,
        `client b's status POST for client a's deployment ${s.deploymentId} answered ${res.status}; it must be refused (404: not in b's scope, item 5)`,
      );
      const seen = await ctx.driver.statuses({
        deploymentId: s.deploymentId,
        includeHistory: true,
      });
      t.expect(
        seen.every((x) => x.clientId !== s.b.clientId),
        `the WFM recorded a status for ${s.deploymentId} from client b (item 5)`,
      );
    },
  }),
];
