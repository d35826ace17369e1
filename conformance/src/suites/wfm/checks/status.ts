/**
 * wfm.status: the WFM's intake of deployment status (checklist 71; OpenAPI POST
 * /api/v1/deployments/{deploymentId}/status): 201 then 200, 400 for malformed JSON, 422 for
 * semantic errors, and what the WFM stored equals what was posted. Each check reports on its own
 * deployment, so reports of other checks never interfere.
 */
import { canonicalJson, decodeDeploymentStatus, encodeDeploymentStatus } from "@margo/proto/wire";
import type { Check, CheckTools } from "../../../core/types.js";
import type { WfmCtx, WireResponse } from "../context.js";
import {
  bodyHint,
  deployApp,
  expectProblem,
  fetchDeploymentYaml,
  findDeployment,
  member,
  type Placed,
  wfmCheck,
} from "./support.js";

/** A deployment to report on: where it is, the manifestVersion it came in, its components. */
interface Target extends Placed {
  version: bigint;
  components: string[];
}

async function target(ctx: WfmCtx, t: CheckTools, short: string): Promise<Target> {
  const placed = await deployApp(ctx, t, short);
  const { manifest, ref } = await findDeployment(
    t,
    placed.client.wire,
    placed.deploymentId,
    "wfm-071",
  );
  if (manifest.version === undefined)
    throw new Error(
      "setup: the manifest has no integer manifestVersion (wfm.manifest judges that)",
    );
  const { tree } = await fetchDeploymentYaml(t, placed.client.wire, ref, "wfm-071");
  const list = member(member(member(tree, "spec"), "deploymentProfile"), "components");
  const components = Array.isArray(list)
    ? list.map((c) => member(c, "name")).filter((n): n is string => typeof n === "string")
    : [];
  return { ...placed, version: manifest.version, components };
}

/** A valid DeploymentStatusManifest for the target in one state (bigint-safe JSON). */
function statusBody(tg: Target, state: string, patch: Record<string, unknown> = {}): string {
  return canonicalJson({
    deploymentId: tg.deploymentId,
    deviceId: tg.deviceId,
    adoptedManifestVersion: tg.version,
    status: { state },
    components: tg.components.map((name) => ({ name, state })),
    ...patch,
  });
}

function post(t: CheckTools, tg: Target, body: string): Promise<WireResponse> {
  return tg.client.wire.request(t, {
    method: "POST",
    path: `/api/v1/deployments/${tg.deploymentId}/status`,
    headers: { "content-type": "application/json" },
    body,
  });
}

/** POST a body breaking one semantic rule; expect 422 #semantic-error. */
function semanticCheck(what: string, title: string, body: (tg: Target) => string): Check<WfmCtx> {
  return wfmCheck({
    id: `wfm.status.${what}-422`,
    title,
    requirements: ["wfm-071"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const tg = await target(ctx, t, `st-${what}`.slice(0, 20));
      const res = await post(t, tg, body(tg));
      expectProblem(t, res, 422, "semantic-error", "wfm-071, item 71");
    },
  });
}

export const statusChecks: Check<WfmCtx>[] = [
  wfmCheck({
    id: "wfm.status.first-report-201",
    title: "The first status report of a deployment answers 201 Created",
    requirements: ["wfm-071"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const tg = await target(ctx, t, "st-first");
      const res = await post(t, tg, statusBody(tg, "installing"));
      t.expect(
        res.status === 201,
        `the first status report for ${tg.deploymentId} must answer 201 (wfm-071, item 71); got ${res.status}${bodyHint(res)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.status.update-200",
    title: "A further status report of the same deployment answers 200 OK",
    requirements: ["wfm-071"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const tg = await target(ctx, t, "st-update");
      const first = await post(t, tg, statusBody(tg, "installing"));
      t.expect(
        first.status === 200 || first.status === 201,
        `setup: the first status report was refused with ${first.status}${bodyHint(first)} (wfm-071)`,
      );
      const res = await post(t, tg, statusBody(tg, "installed"));
      t.expect(
        res.status === 200,
        `a repeated status report for ${tg.deploymentId} must answer 200 (wfm-071, item 71); got ${res.status}${bodyHint(res)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.status.malformed-400",
    title: "A status body that is not JSON answers 400 #invalid-request",
    requirements: ["wfm-071"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const tg = await target(ctx, t, "st-malformed");
      const res = await post(t, tg, `{"deploymentId": "${tg.deploymentId}", "status": {`);
      expectProblem(t, res, 400, "invalid-request", "wfm-071, item 71");
    },
  }),

  semanticCheck(
    "unknown-state",
    "A status with a state outside the enum answers 422 #semantic-error",
    (tg) => statusBody(tg, "running"),
  ),
  semanticCheck(
    "id-mismatch",
    "A status whose deploymentId differs from the path answers 422 #semantic-error",
    (tg) => statusBody(tg, "installed", { deploymentId: "00000000-0000-4000-8000-000000000000" }),
  ),
  semanticCheck(
    "missing-adopted-version",
    "A status without adoptedManifestVersion answers 422 #semantic-error",
    (tg) => {
      const body = JSON.parse(statusBody(tg, "installed")) as Record<string, unknown>;
      delete body.adoptedManifestVersion;
      return JSON.stringify(body);
    },
  ),

  wfmCheck({
    id: "wfm.status.stored-as-posted",
    title: "The status the WFM holds equals the one the device posted",
    requirements: ["wfm-071"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const tg = await target(ctx, t, "st-stored");
      const text = statusBody(tg, "failed", {
        status: {
          state: "failed",
          error: { code: "CONFORMANCE-1", source: tg.components[0] ?? "x", message: "probe" },
        },
        components: tg.components.map((name, i) =>
          i === 0
            ? {
                name,
                state: "failed",
                error: { code: "CONFORMANCE-1", source: name, message: "probe" },
              }
            : { name, state: "installed" },
        ),
      });
      const res = await post(t, tg, text);
      t.expect(
        res.status === 200 || res.status === 201,
        `the status report was refused with ${res.status}${bodyHint(res)} (wfm-071)`,
      );
      const posted = decodeDeploymentStatus(text).value;
      if (!posted) throw new Error("the harness built a status body its own codec cannot read");
      const held = await ctx.driver.statuses({ deploymentId: tg.deploymentId });
      const mine = held.filter((h) => h.status.deploymentId === tg.deploymentId);
      t.expect(
        mine.length > 0,
        `the WFM answered ${res.status} but its driver lists no status for ${tg.deploymentId} (wfm-071)`,
      );
      const latest = mine[mine.length - 1];
      const want = Buffer.from(encodeDeploymentStatus(posted)).toString("utf8");
      const got = latest ? Buffer.from(encodeDeploymentStatus(latest.status)).toString("utf8") : "";
      t.expect(
        got === want,
        `the status the WFM holds must equal the one posted (wfm-071, item 71): posted ${want}, held ${got}`,
      );
      t.expect(
        latest?.clientId === tg.client.clientId,
        `the status must be held for the reporting client ${tg.client.clientId} (wfm-071); held for ${latest?.clientId}`,
      );
    },
  }),
];
