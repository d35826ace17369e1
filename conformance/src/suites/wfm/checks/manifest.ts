/**
 * wfm.manifest: the State Manifest endpoint GET /api/v1/deployments (checklist 37-43, 50):
 * negotiation, ETag = digest of the exact body, 304, caching, manifestVersion, `bundle: null`
 * and canonical JSON. Artifacts the manifest points at are wfm.artifacts' concern.
 */
import {
  canonicalJsonBytes,
  type JsonValue,
  MANIFEST_MEDIA_TYPE,
  U64_MAX,
} from "@margo/proto/wire";
import type { Check, CheckTools } from "../../../core/types.js";
import type { WfmClient, WfmCtx } from "../context.js";
import {
  bodyHint,
  deployApp,
  digestOf,
  expectProblem,
  findDeployment,
  getManifest,
  header,
  member,
  readManifest,
  versionOf,
  wfmCheck,
} from "./support.js";

const ETAG_GRAMMAR = /^"sha256:[0-9a-f]{64}"$/;

/** Media type part of a Content-Type, lower-cased, parameters dropped. */
function mediaTypeOf(value: string | undefined): string | undefined {
  return value?.split(";")[0]?.trim().toLowerCase();
}

/**
 * Undeploys every deployment the client's manifest lists, so the next manifest is empty. The
 * driver reset before the check normally leaves nothing; this covers a reset that keeps some.
 */
async function emptyManifestOf(ctx: WfmCtx, t: CheckTools, client: WfmClient) {
  let m = await getManifest(t, client.wire);
  if (m.deployments.length > 0) {
    for (const d of m.deployments) await ctx.driver.undeploy(d.deploymentId);
    m = await getManifest(t, client.wire);
    if (m.deployments.length > 0)
      t.skip(
        `the client's manifest still lists ${m.deployments.length} deployment(s) after undeploying them through the driver`,
      );
  }
  return m;
}

export const manifestChecks: Check<WfmCtx>[] = [
  wfmCheck({
    id: "wfm.manifest.no-accept-default-type",
    title: "GET /api/v1/deployments without Accept answers 200 with the manifest media type",
    requirements: ["wfm-037"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const m = await getManifest(t, ctx.clients[0].wire, { headers: {} });
      const ct = header(m.res, "content-type");
      t.expect(
        mediaTypeOf(ct) === MANIFEST_MEDIA_TYPE,
        `without Accept the manifest must come as ${MANIFEST_MEDIA_TYPE} (wfm-037, item 37); Content-Type was ${ct === undefined ? "absent" : JSON.stringify(ct)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.unsupported-accept-406",
    title: "GET /api/v1/deployments accepting only unsupported types answers 406",
    requirements: ["wfm-038"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const res = await ctx.clients[0].wire.request(t, {
        method: "GET",
        path: "/api/v1/deployments",
        headers: { accept: "application/xml, text/csv" },
      });
      expectProblem(t, res, 406, "server-cannot-generate-response", "wfm-038, item 38");
    },
  }),

  wfmCheck({
    id: "wfm.manifest.etag-is-body-digest",
    title: 'The manifest ETag is "sha256:<hex>" of the exact body bytes',
    requirements: ["wfm-039"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      // Judged on an empty and on a non-empty manifest: both are serialised by the WFM.
      const empty = await getManifest(t, ctx.clients[1].wire);
      await deployApp(ctx, t, "man-etag");
      const full = await getManifest(t, ctx.clients[0].wire);
      for (const m of [empty, full]) {
        const etag = header(m.res, "etag");
        t.expect(
          etag !== undefined,
          "a 200 manifest response must carry an ETag (wfm-039, item 39)",
        );
        t.expect(
          ETAG_GRAMMAR.test(etag),
          `the manifest ETag must match ^"sha256:[0-9a-f]{64}"$ (wfm-039, item 39); got ${JSON.stringify(etag)}`,
        );
        const expected = `"${digestOf(m.res.body)}"`;
        t.expect(
          etag === expected,
          `the manifest ETag must be the sha256 of the exact body bytes (wfm-039, item 39): body hashes to ${expected}, ETag was ${etag}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.manifest.if-none-match-304",
    title: "If-None-Match with the current ETag answers 304 with an empty body",
    requirements: ["wfm-040"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const wire = ctx.clients[0].wire;
      await deployApp(ctx, t, "man-304");
      // A manifest that changes between the two requests would legitimately answer 200 with a
      // new ETag; retry a few times before judging, so only a WFM that ignores the header fails.
      for (let attempt = 0; attempt < 3; attempt++) {
        const first = await getManifest(t, wire);
        const etag = header(first.res, "etag");
        if (etag === undefined)
          t.skip("the manifest has no ETag (wfm.manifest.etag-is-body-digest judges that)");
        const res = await wire.request(t, {
          method: "GET",
          path: "/api/v1/deployments",
          headers: { accept: MANIFEST_MEDIA_TYPE, "if-none-match": etag },
        });
        if (res.status === 200 && header(res, "etag") !== etag) continue;
        t.expect(
          res.status === 304,
          `If-None-Match ${etag} (the current ETag) must answer 304 (wfm-040, item 40); got ${res.status}`,
        );
        t.expect(
          res.body.length === 0,
          `a 304 must have an empty body (wfm-040, item 40); got ${res.body.length} bytes${bodyHint(res)}`,
        );
        return;
      }
      t.fail("the manifest changed on every retry, so If-None-Match could not be judged (wfm-040)");
    },
  }),

  wfmCheck({
    id: "wfm.manifest.cache-control-private",
    title: "The manifest is Cache-Control: private and neither immutable nor long-lived",
    requirements: ["wfm-041"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const m = await getManifest(t, ctx.clients[0].wire);
      const cc = header(m.res, "cache-control");
      const directives = (cc ?? "")
        .toLowerCase()
        .split(",")
        .map((d) => d.trim());
      t.expect(
        directives.includes("private"),
        `the manifest must be Cache-Control: private (wfm-041, item 41); got ${cc === undefined ? "no Cache-Control" : JSON.stringify(cc)}`,
      );
      t.expect(
        !directives.includes("immutable"),
        `the manifest changes and must not be immutable (wfm-041, item 41); got ${JSON.stringify(cc)}`,
      );
      const maxAge = directives.find((d) => d.startsWith("max-age="));
      const seconds = maxAge ? Number(maxAge.slice("max-age=".length)) : 0;
      // "long" is not quantified; a poll period is seconds, so anything above a minute would let
      // a cache hide a change from a polling device.
      t.expect(
        !(seconds > 60),
        `the manifest must not carry a long max-age (wfm-041, item 41); got ${JSON.stringify(cc)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.version-starts-at-1",
    title: "manifestVersion of a newly admitted client's first manifest is 1",
    requirements: ["wfm-042"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const client = ctx.clients.find((c) => c.firstManifest !== undefined);
      if (!client?.firstManifest)
        t.skip(
          "no client was admitted by the harness in this run with its first manifest recorded before any check (pre-provisioned clients may have had manifests before)",
        );
      const m = readManifest(t, client.firstManifest, "wfm-042");
      t.expect(
        m.version === 1n,
        `the first manifest of newly admitted client ${client.clientId} must have manifestVersion 1 (wfm-042, item 42); got ${JSON.stringify(String(member(m.tree, "manifestVersion")))}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.version-increases",
    title: "manifestVersion strictly increases on deploy, update and undeploy",
    requirements: ["wfm-042"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const wire = ctx.clients[0].wire;
      const before = await getManifest(t, wire);
      const placed = await deployApp(ctx, t, "man-ver", {
        app: "multi",
        parameters: { greeting: "version one" },
      });
      const afterDeploy = await getManifest(t, wire);
      await ctx.driver.update(placed.deploymentId, { greeting: "version two" });
      const afterUpdate = await getManifest(t, wire);
      await ctx.driver.undeploy(placed.deploymentId);
      const afterUndeploy = await getManifest(t, wire);
      const steps: Array<[string, bigint | undefined, bigint | undefined]> = [
        ["deploy", before.version, afterDeploy.version],
        ["update", afterDeploy.version, afterUpdate.version],
        ["undeploy", afterUpdate.version, afterUndeploy.version],
      ];
      t.note(`manifestVersions: ${steps.map(([w, a, b]) => `${w} ${a}->${b}`).join(", ")}`);
      for (const [what, a, b] of steps) {
        t.expect(
          a !== undefined && b !== undefined,
          `manifestVersion must be an integer (wfm-042); got ${a} / ${b}`,
        );
        t.expect(
          b > a,
          `manifestVersion must strictly increase on ${what} (wfm-042, item 42): was ${a}, then ${b}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.manifest.version-in-range",
    title: "manifestVersion is an integer within [1, 2^64-1]",
    requirements: ["wfm-042"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const m = await getManifest(t, ctx.clients[0].wire);
      const raw = member(m.tree, "manifestVersion");
      // The raw token: 1.0 or 1e0 parse to an integer but are not written as one.
      const token = /"manifestVersion"\s*:\s*([^,}\s]+)/.exec(m.res.body.toString("utf8"))?.[1];
      t.note(`manifestVersion token: ${token}`);
      t.expect(
        typeof raw === "number" || typeof raw === "bigint",
        `manifestVersion must be a JSON number (wfm-042, item 42); got ${JSON.stringify(String(raw))}`,
      );
      t.expect(
        token !== undefined && /^[1-9][0-9]*$/.test(token),
        `manifestVersion must be written as a positive integer (wfm-042, item 42); got ${token}`,
      );
      const v = versionOf(raw as JsonValue);
      t.expect(
        v !== undefined && v >= 1n && v <= U64_MAX,
        `manifestVersion must lie in [1, 2^64-1] (wfm-042, item 42); got ${token}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.bundle-null-when-empty",
    title: "A manifest without deployments has bundle present and null",
    requirements: ["wfm-043"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const m = await emptyManifestOf(ctx, t, ctx.clients[1]);
      t.expect(
        Object.hasOwn(m.tree, "bundle"),
        `a manifest with no deployments must carry "bundle": null, not omit it (wfm-043, item 43); body${bodyHint(m.res)}`,
      );
      t.expect(
        m.tree.bundle === null,
        `a manifest with no deployments must have bundle null, never an (empty) archive (wfm-043, item 43); got ${JSON.stringify(String(m.tree.bundle))}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.required-members",
    title:
      "The manifest has manifestVersion, bundle, deployments; entries have deploymentId, digest, url",
    requirements: ["wfm-102"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const placed = await deployApp(ctx, t, "man-shape");
      const m = await getManifest(t, placed.client.wire);
      for (const key of ["manifestVersion", "bundle", "deployments"])
        t.expect(
          Object.hasOwn(m.tree, key),
          `the manifest must have a ${key} member (wfm-102, OpenAPI UnsignedAppStateManifest)${bodyHint(m.res)}`,
        );
      const list = m.tree.deployments;
      t.expect(Array.isArray(list), "deployments must be an array (wfm-102)");
      t.expect(
        list.length > 0,
        "deployments must list the deployment the driver created (wfm-102)",
      );
      for (const [i, d] of list.entries())
        for (const key of ["deploymentId", "digest", "url"])
          t.expect(
            typeof member(d, key) === "string",
            `deployments[${i}].${key} must be a string (wfm-102, OpenAPI DeploymentManifestRef); got ${JSON.stringify(String(member(d, key)))}`,
          );
    },
  }),

  wfmCheck({
    id: "wfm.manifest.canonical-json",
    title: "The manifest body is RFC 8785 canonical JSON",
    requirements: ["wfm-050"],
    level: "SHOULD",
    async run(ctx, t: CheckTools) {
      const placed = await deployApp(ctx, t, "man-jcs");
      const { manifest } = await findDeployment(
        t,
        placed.client.wire,
        placed.deploymentId,
        "wfm-050",
      );
      const canonical = Buffer.from(canonicalJsonBytes(manifest.tree));
      t.expect(
        canonical.equals(manifest.res.body),
        `the manifest should be serialised as RFC 8785 canonical JSON (wfm-050, item 50); canonical form: ${canonical.toString("utf8").slice(0, 200)}`,
      );
    },
  }),
];
