import { createHash } from "node:crypto";
import {
  BUNDLE_MEDIA_TYPE,
  bundleUrl,
  DEPLOYMENT_MEDIA_TYPE,
  deploymentUrl,
  encodeStateManifest,
} from "@margo/proto/wire";
import type { Fault, PublishedManifest, ServedDeployment } from "../context.js";
import { tarGz } from "./tar-gz.js";

/**
 * Turns "serve these deployments" plus the active faults into the exact bytes the instrumented
 * WFM answers with: the manifest body and every artifact by URL path. Pure, so the unit test can
 * check each lie in isolation.
 */

/** One body the management server answers a GET with. */
export interface ServedArtifact {
  kind: "deployment" | "bundle";
  deploymentId?: string;
  contentType: string;
  /** The digest the URL names (what the ETag repeats). */
  digest: string;
  bytes: Buffer;
}

export interface BuiltManifest {
  published: PublishedManifest;
  /** URL path (as written in the manifest) -> body. */
  artifacts: Map<string, ServedArtifact>;
}

const hex = (alg: string, b: Uint8Array) => createHash(alg).update(b).digest("hex");
export const sha256Digest = (b: Uint8Array) => `sha256:${hex("sha256", b)}`;

/** Digest of these bytes written with the algorithm a digest-algorithm fault asks for. */
function digestWith(algorithm: "sha256" | "sha512" | "md5", b: Uint8Array): string {
  return `${algorithm}:${hex(algorithm, b)}`;
}

/** Bytes that are certainly not what is served: the digest of them is a lie about `b`. */
const decoy = (b: Uint8Array) => Buffer.concat([Buffer.from(b), Buffer.from("\n# not served\n")]);

/** The URL a non-sha256 digest would have (the wire helper only writes the sha256 form). */
function urlFor(kind: "deployment" | "bundle", digest: string, deploymentId?: string): string {
  if (kind === "bundle") {
    return digest.startsWith("sha256:") ? bundleUrl(digest) : `/api/v1/bundles/${digest}`;
  }
  const id = deploymentId ?? "";
  return digest.startsWith("sha256:")
    ? deploymentUrl(id, digest)
    : `/api/v1/deployments/${encodeURIComponent(id)}/${digest}`;
}

export function buildManifest(
  version: bigint,
  deployments: readonly ServedDeployment[],
  faults: readonly Fault[],
): BuiltManifest {
  const algFault = faults.find((f) => f.kind === "digest-algorithm");
  const algorithm = algFault?.kind === "digest-algorithm" ? algFault.algorithm : "sha256";
  const sizeWrong = faults.some((f) => f.kind === "size-bytes-wrong");
  const bundleLie = faults.some((f) => f.kind === "bundle-digest-mismatch");
  const depLies = new Set(
    faults.flatMap((f) => (f.kind === "deployment-digest-mismatch" ? [f.deploymentId] : [])),
  );
  const artifacts = new Map<string, ServedArtifact>();

  const refs = deployments.map((d) => {
    const bytes = Buffer.from(d.yaml, "utf8");
    const claimed = digestWith(algorithm, depLies.has(d.deploymentId) ? decoy(bytes) : bytes);
    const url = urlFor("deployment", claimed, d.deploymentId);
    artifacts.set(url, {
      kind: "deployment",
      deploymentId: d.deploymentId,
      contentType: DEPLOYMENT_MEDIA_TYPE,
      digest: claimed,
      bytes,
    });
    const size = BigInt(bytes.length) + (sizeWrong ? 1000n : 0n);
    return { deploymentId: d.deploymentId, digest: claimed, url, sizeBytes: size };
  });

  let bundle: PublishedManifest["bundle"] = null;
  let bundleRef: { mediaType: string; digest: string; url: string; sizeBytes: bigint } | undefined;
  if (deployments.length > 0) {
    // Names sorted so one set of deployments always gives one archive (and one digest).
    const entries = deployments
      .map((d) => ({ name: `${d.deploymentId}.yaml`, bytes: Buffer.from(d.yaml, "utf8") }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const archive = tarGz(entries);
    const digest = digestWith(algorithm, bundleLie ? decoy(archive) : archive);
    const url = urlFor("bundle", digest);
    artifacts.set(url, { kind: "bundle", contentType: BUNDLE_MEDIA_TYPE, digest, bytes: archive });
    bundle = { digest, url };
    bundleRef = {
      mediaType: BUNDLE_MEDIA_TYPE,
      digest,
      url,
      sizeBytes: BigInt(archive.length) + (sizeWrong ? 1000n : 0n),
    };
  }

  // The codec only writes sha256 digests; other algorithms go in over sha256 placeholders.
  const swaps = new Map<string, string>();
  const placeholder = (digest: string, url: string) => {
    if (digest.startsWith("sha256:")) return { digest, url };
    const p = sha256Digest(Buffer.from(`placeholder ${digest}`));
    swaps.set(p, digest);
    return { digest: p, url: url.replace(digest, p) };
  };
  const encoded = encodeStateManifest({
    manifestVersion: version,
    ...(bundleRef
      ? { bundle: { ...bundleRef, ...placeholder(bundleRef.digest, bundleRef.url) } }
      : {}),
    deployments: refs.map((r) => ({ ...r, ...placeholder(r.digest, r.url) })),
  });
  let text = Buffer.from(encoded).toString("utf8");
  for (const [p, real] of swaps) text = text.replaceAll(p, real);
  const body = Buffer.from(text, "utf8");
  return {
    published: {
      manifestVersion: version,
      body,
      etag: `"${sha256Digest(body)}"`,
      deployments: refs.map(({ deploymentId, digest, url }) => ({ deploymentId, digest, url })),
      bundle,
    },
    artifacts,
  };
}
