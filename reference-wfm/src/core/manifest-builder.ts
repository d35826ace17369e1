import { createHash } from "node:crypto";
import {
  BUNDLE_MEDIA_TYPE,
  bundleUrl,
  deploymentUrl,
  encodeStateManifest,
} from "@margo/proto/wire";
import { mutant, omitNullBundle } from "../mutants.js";
import type { DeploymentRecord, ManifestRecord } from "../store/store.js";
import { buildBundle, bundleEntryName, sha256Digest } from "./bundle.js";

/**
 * Builds one client's State Manifest and bundle from its live deployments (digest 6.1-6.4).
 * Pure and synchronous: the store calls it inside its desired-state transaction, and equal
 * inputs must give equal bytes (item 50), so the manifest ETag only changes with the content.
 */
export function buildManifest(
  clientId: string,
  deployments: readonly DeploymentRecord[],
  manifestVersion: bigint,
): ManifestRecord {
  // Sorted by id rather than by creation: the same set always lists the same way.
  const live = [...deployments].sort((a, b) =>
    a.deploymentId < b.deploymentId ? -1 : a.deploymentId > b.deploymentId ? 1 : 0,
  );
  const refs = live.map((d) => ({
    deploymentId: d.deploymentId,
    digest: d.digest,
    sizeBytes: BigInt(d.yaml.byteLength),
    url: deploymentUrl(d.deploymentId, d.digest),
  }));
  let bundle: ManifestRecord["bundle"];
  if (live.length > 0) {
    const bytes = buildBundle(
      live.map((d) => ({ name: bundleEntryName(d.deploymentId), bytes: d.yaml })),
    );
    bundle = { digest: sha256Digest(bytes), bytes };
  }
  let body = Buffer.from(
    encodeStateManifest({
      manifestVersion: mutant("manifest-version-reused") ? 1n : manifestVersion,
      deployments: refs,
      ...(bundle
        ? {
            bundle: {
              mediaType: BUNDLE_MEDIA_TYPE,
              digest: bundle.digest,
              sizeBytes: BigInt(bundle.bytes.byteLength),
              url: bundleUrl(bundle.digest),
            },
          }
        : {}),
    }),
  );
  if (mutant("bundle-null-omitted")) body = omitNullBundle(body);
  return {
    clientId,
    manifestVersion,
    body,
    etag: manifestEtag(body),
    ...(bundle ? { bundle } : {}),
  };
}

/** The manifest ETag: quoted `sha256:<hex>` of the exact body bytes (item 39). */
export function manifestEtag(body: Uint8Array): string {
  return `"sha256:${createHash("sha256")
    .update(mutant("etag-not-body-digest") ? Buffer.concat([body, Buffer.from("\n")]) : body)
    .digest("hex")}"`;
}
