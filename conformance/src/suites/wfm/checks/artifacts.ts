/**
 * wfm.artifacts: what the manifest points at (checklist 44-49): reference forms, the
 * digest-addressed YAML and bundle endpoints (exact-byte digests, ETags, immutable caching, media
 * types), the bundle's content, 404 for unknown digests, Content-Encoding, and deploymentId =
 * YAML id. The manifest's own headers are wfm.manifest's concern.
 */
import { gunzipSync } from "node:zlib";
import { readTarGz } from "@margo/proto/package";
import {
  BUNDLE_MEDIA_TYPE,
  bundleUrl,
  DEPLOYMENT_MEDIA_TYPE,
  DIGEST,
  deploymentUrl,
  MANIFEST_MEDIA_TYPE,
} from "@margo/proto/wire";
import type { Check, CheckTools } from "../../../core/types.js";
import type { WfmCtx, WireResponse } from "../context.js";
import {
  bodyHint,
  deployApp,
  digestOf,
  fetchDeploymentYaml,
  findDeployment,
  getArtifact,
  getManifest,
  header,
  isMargoType,
  isObject,
  type ManifestDeploymentRef,
  type ManifestRead,
  member,
  type Placed,
  PROBLEM_NS,
  problemType,
  wfmCheck,
} from "./support.js";

const IMMUTABLE = ["private", "max-age=31536000", "immutable"];
const UNKNOWN_DIGEST = `sha256:${"0".repeat(63)}1`;

/**
 * A check's deployment with the manifest that lists it; `two` adds a second deployment (another
 * device, another app) where a bundle of one could hide a set-handling fault.
 */
async function placedWithManifest(
  ctx: WfmCtx,
  t: CheckTools,
  short: string,
  requirement: string,
  two = false,
): Promise<{ placed: Placed; manifest: ManifestRead; ref: ManifestDeploymentRef }> {
  const placed = await deployApp(ctx, t, short);
  if (two) await deployApp(ctx, t, `${short}-b`, { app: "multi" });
  const { manifest, ref } = await findDeployment(
    t,
    placed.client.wire,
    placed.deploymentId,
    requirement,
  );
  return { placed, manifest, ref };
}

/** The manifest's bundle reference; its absence with deployments listed fails `requirement`. */
function bundleOf(
  t: CheckTools,
  m: ManifestRead,
  requirement: string,
): { mediaType: unknown; digest: string; url: string } {
  const b = m.bundle;
  t.expect(
    isObject(b),
    `a manifest listing deployments must reference a bundle (${requirement}); bundle was ${JSON.stringify(String(b))}`,
  );
  const digest = member(b, "digest");
  const url = member(b, "url");
  t.expect(
    typeof digest === "string" && typeof url === "string",
    `bundle.digest and bundle.url must be strings (${requirement})`,
  );
  return { mediaType: member(b, "mediaType"), digest, url };
}

/** GET an artifact expecting 200; another status fails `requirement`. */
async function get200(
  t: CheckTools,
  ctx: WfmCtx,
  path: string,
  requirement: string,
  headers: Record<string, string> = {},
): Promise<WireResponse> {
  const res = await getArtifact(t, ctx.clients[0].wire, path, headers);
  t.expect(
    res.status === 200,
    `GET ${path}: expected 200 (${requirement}), got ${res.status}${bodyHint(res)}`,
  );
  return res;
}

/** Both digest-addressed artifacts of a fresh deployment: its YAML and the bundle. */
async function bothArtifacts(
  ctx: WfmCtx,
  t: CheckTools,
  short: string,
  requirement: string,
): Promise<Array<{ what: string; digest: string; res: WireResponse; mediaType: string }>> {
  const { manifest, ref } = await placedWithManifest(ctx, t, short, requirement);
  const bundle = bundleOf(t, manifest, requirement);
  return [
    {
      what: `deployment YAML ${ref.url}`,
      digest: ref.digest,
      res: await get200(t, ctx, ref.url, requirement),
      mediaType: DEPLOYMENT_MEDIA_TYPE,
    },
    {
      what: `bundle ${bundle.url}`,
      digest: bundle.digest,
      res: await get200(t, ctx, bundle.url, requirement),
      mediaType: typeof bundle.mediaType === "string" ? bundle.mediaType : BUNDLE_MEDIA_TYPE,
    },
  ];
}

/** Decoded body bytes: gunzip when Content-Encoding says gzip (digest 6.2: digest after decoding). */
function decodedBody(res: WireResponse): Buffer {
  const enc = header(res, "content-encoding")?.trim().toLowerCase();
  if (enc === undefined || enc === "" || enc === "identity") return res.body;
  if (enc === "gzip" || enc === "x-gzip") return gunzipSync(res.body);
  throw new Error(`the harness asked for gzip only but got Content-Encoding ${enc}`);
}

export const artifactChecks: Check<WfmCtx>[] = [
  wfmCheck({
    id: "wfm.artifacts.bundle-ref-form",
    title: "bundle.mediaType is the bundle media type and bundle.url is /api/v1/bundles/{digest}",
    requirements: ["wfm-044"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { manifest } = await placedWithManifest(ctx, t, "art-bref", "wfm-044");
      const b = bundleOf(t, manifest, "wfm-044");
      t.expect(
        b.mediaType === BUNDLE_MEDIA_TYPE,
        `bundle.mediaType must be ${BUNDLE_MEDIA_TYPE} (wfm-044, item 44); got ${JSON.stringify(b.mediaType)}`,
      );
      t.expect(
        DIGEST.test(b.digest),
        `bundle.digest must be sha256:<64 lowercase hex> (wfm-044); got ${JSON.stringify(b.digest)}`,
      );
      t.expect(
        b.url === bundleUrl(b.digest),
        `bundle.url must be ${bundleUrl(b.digest)} (wfm-044, item 44); got ${JSON.stringify(b.url)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.deployment-url-form",
    title: "deployments[].url is /api/v1/deployments/{deploymentId}/{digest}",
    requirements: ["wfm-044"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { manifest } = await placedWithManifest(ctx, t, "art-dref", "wfm-044", true);
      for (const d of manifest.deployments) {
        t.expect(
          DIGEST.test(d.digest),
          `deployments[].digest must be sha256:<64 lowercase hex> (wfm-044); got ${JSON.stringify(d.digest)}`,
        );
        const expected = deploymentUrl(d.deploymentId, d.digest);
        t.expect(
          d.url === expected || d.url === `/api/v1/deployments/${d.deploymentId}/${d.digest}`,
          `deployments[].url must be ${expected} (wfm-044, item 44); got ${JSON.stringify(d.url)}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.body-matches-digest",
    title: "The YAML and bundle bodies hash to the digest in their URL",
    requirements: ["wfm-047"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      for (const a of await bothArtifacts(ctx, t, "art-digest", "wfm-047")) {
        const got = digestOf(decodedBody(a.res));
        t.expect(
          got === a.digest,
          `the ${a.what} body must hash to its URL digest (wfm-047, item 47): body is ${got}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.etag-is-digest",
    title: "The YAML and bundle ETag is the quoted digest",
    requirements: ["wfm-047"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      for (const a of await bothArtifacts(ctx, t, "art-etag", "wfm-047")) {
        const etag = header(a.res, "etag");
        t.expect(
          etag === `"${a.digest}"`,
          `the ${a.what} ETag must be "${a.digest}" (wfm-047, item 47); got ${etag === undefined ? "none" : etag}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.immutable-caching",
    title: "The YAML and bundle are Cache-Control: private, max-age=31536000, immutable",
    requirements: ["wfm-047"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      for (const a of await bothArtifacts(ctx, t, "art-cache", "wfm-047")) {
        const cc = header(a.res, "cache-control");
        const directives = (cc ?? "")
          .toLowerCase()
          .split(",")
          .map((d) => d.trim());
        const missing = IMMUTABLE.filter((d) => !directives.includes(d));
        t.expect(
          missing.length === 0,
          `the ${a.what} must be Cache-Control: private, max-age=31536000, immutable (wfm-047, item 47); got ${cc === undefined ? "none" : JSON.stringify(cc)} (missing ${missing.join(", ")})`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.content-types",
    title: "The YAML is application/yaml and the bundle has the manifest's bundle.mediaType",
    requirements: ["wfm-047"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      for (const a of await bothArtifacts(ctx, t, "art-ctype", "wfm-047")) {
        const ct = header(a.res, "content-type")?.split(";")[0]?.trim().toLowerCase();
        t.expect(
          ct === a.mediaType,
          `the ${a.what} must be served as ${a.mediaType} (wfm-047, item 47); Content-Type was ${ct ?? "absent"}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.bundle-contents",
    title: "The bundle is a gzip tar holding exactly the referenced YAMLs at its root",
    requirements: ["wfm-045"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { manifest } = await placedWithManifest(ctx, t, "art-tar", "wfm-045", true);
      const b = bundleOf(t, manifest, "wfm-045");
      const res = await get200(t, ctx, b.url, "wfm-045");
      let read: Awaited<ReturnType<typeof readTarGz>>;
      try {
        read = await readTarGz(decodedBody(res));
      } catch (err) {
        t.fail(
          `the bundle is not a readable gzip tar (wfm-045, item 45): ${(err as Error).message}`,
        );
      }
      const fatal = read.problems.filter((p) => p.severity === "error");
      t.expect(
        fatal.length === 0,
        `the bundle is not a clean gzip tar (wfm-045, item 45): ${fatal.map((p) => p.message).join("; ")}`,
      );
      const files = read.entries.filter((e) => e.type === "file");
      const others = read.entries.filter((e) => e.type !== "file" && e.type !== "dir");
      t.note(`bundle entries: ${read.entries.map((e) => `${e.path} (${e.type})`).join(", ")}`);
      t.expect(
        others.length === 0,
        `the bundle must hold only YAML files (wfm-045); found ${others.map((e) => `${e.path} (${e.type})`).join(", ")}`,
      );
      const nested = files.filter((e) => e.path.replace(/^\.\//, "").includes("/"));
      t.expect(
        nested.length === 0,
        `the YAML files must sit at the bundle's root (wfm-045, item 45); found ${nested.map((e) => e.path).join(", ")}`,
      );
      const inBundle = files.map((e) => digestOf(e.content ?? new Uint8Array()));
      const expected = manifest.deployments.map((d) => d.digest);
      const missing = expected.filter((d) => !inBundle.includes(d));
      const extra = files.filter((_, i) => !expected.includes(inBundle[i] ?? ""));
      t.expect(
        missing.length === 0 && extra.length === 0 && files.length === expected.length,
        `the bundle must hold exactly the ${expected.length} YAMLs the manifest references (wfm-045, item 45): missing digests ${missing.join(", ") || "none"}; extra files ${extra.map((e) => e.path).join(", ") || "none"}; ${files.length} files`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.unknown-digest-404",
    title: "A YAML or bundle digest the WFM does not hold answers 404",
    requirements: ["wfm-048"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { ref } = await placedWithManifest(ctx, t, "art-404", "wfm-048");
      const cases: Array<[string, string]> = [
        [deploymentUrl(ref.deploymentId, UNKNOWN_DIGEST), "deployment-not-found"],
        [bundleUrl(UNKNOWN_DIGEST), "invalid-bundle"],
      ];
      for (const [path, fragment] of cases) {
        const res = await getArtifact(t, ctx.clients[0].wire, path);
        t.expect(
          res.status === 404,
          `GET ${path} (a digest the WFM cannot serve) must answer 404 (wfm-048, item 48); got ${res.status}`,
        );
        const type = problemType(res);
        t.expect(
          isMargoType(type, fragment),
          `the 404 for ${path} must have type ${PROBLEM_NS}#${fragment} (wfm-048); got ${type ?? "none"}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.digest-over-decoded-bytes",
    title: "With Accept-Encoding: gzip, digests and ETags are those of the decoded bytes",
    requirements: ["wfm-049"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { ref } = await placedWithManifest(ctx, t, "art-gzip", "wfm-049");
      const gz = { "accept-encoding": "gzip" };
      const yaml = await get200(t, ctx, ref.url, "wfm-049", gz);
      const manifest = await getManifest(t, ctx.clients[0].wire, {
        headers: { accept: MANIFEST_MEDIA_TYPE, ...gz },
      });
      const encoded = [yaml, manifest.res].filter((r) => header(r, "content-encoding"));
      if (encoded.length === 0)
        t.skip(
          "the WFM sent no Content-Encoding for Accept-Encoding: gzip (item 49 applies only when it does)",
        );
      if (header(yaml, "content-encoding")) {
        const got = digestOf(decodedBody(yaml));
        t.expect(
          got === ref.digest,
          `the gzip-encoded YAML must decode to bytes hashing to ${ref.digest} (wfm-049, item 49); decoded bytes hash to ${got}`,
        );
        t.expect(
          header(yaml, "etag") === `"${ref.digest}"`,
          `the gzip-encoded YAML's ETag must be the digest of the decoded bytes (wfm-049); got ${header(yaml, "etag")}`,
        );
      }
      if (header(manifest.res, "content-encoding")) {
        const expected = `"${digestOf(decodedBody(manifest.res))}"`;
        t.expect(
          header(manifest.res, "etag") === expected,
          `the gzip-encoded manifest's ETag must be the digest of the decoded body ${expected} (wfm-049, item 49); got ${header(manifest.res, "etag")}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.vary-accept-encoding",
    title: "A Content-Encoded artifact carries Vary: Accept-Encoding",
    requirements: ["wfm-049s"],
    level: "SHOULD",
    async run(ctx, t: CheckTools) {
      const { ref } = await placedWithManifest(ctx, t, "art-vary", "wfm-049s");
      const yaml = await get200(t, ctx, ref.url, "wfm-049s", { "accept-encoding": "gzip" });
      if (!header(yaml, "content-encoding"))
        t.skip("the WFM did not compress the YAML for Accept-Encoding: gzip");
      const vary = (header(yaml, "vary") ?? "")
        .toLowerCase()
        .split(",")
        .map((v) => v.trim());
      t.expect(
        vary.includes("accept-encoding") || vary.includes("*"),
        `a compressed response should carry Vary: Accept-Encoding (wfm-049s, item 49); Vary was ${header(yaml, "vary") ?? "absent"}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.artifacts.deployment-id-is-yaml-id",
    title: "deployments[].deploymentId equals the YAML's top-level id",
    requirements: ["wfm-046"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { manifest } = await placedWithManifest(ctx, t, "art-id", "wfm-046");
      for (const d of manifest.deployments) {
        const { tree } = await fetchDeploymentYaml(t, ctx.clients[0].wire, d, "wfm-046");
        t.expect(
          tree.id === d.deploymentId,
          `deployments[].deploymentId ${d.deploymentId} must equal the YAML's id (wfm-046, item 46); the YAML says ${JSON.stringify(String(tree.id))}`,
        );
      }
    },
  }),
];
