import type {
  DeploymentBundleRef,
  DeploymentManifestRef,
  UnsignedAppStateManifest,
} from "../gen/margo/model/v1/state_manifest.js";
import { pointer } from "../problem.js";
import { type Decoded, decodeJson, encodeJson } from "./codec.js";
import { isJsonObject, type JsonObject, type JsonValue } from "./json-value.js";
import type { Reader } from "./reader.js";

/** BUNDLE_MEDIA_TYPE is the only media type a bundle may have (OpenAPI DeploymentBundleRef). */
export const BUNDLE_MEDIA_TYPE = "application/vnd.margo.bundle.v1+tar+gzip";

/** MANIFEST_MEDIA_TYPE is the Content-Type of the state manifest response. */
export const MANIFEST_MEDIA_TYPE = "application/vnd.margo.manifest.v1+json";

/** DIGEST is the only digest form rc.3 allows (digest section 6.2). */
export const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** readDigest reads a required digest member, reporting wire.digest for any other form. */
export function readDigest(r: Reader, obj: JsonObject, at: string): string | undefined {
  const v = r.string(obj, "digest", at, { required: true });
  if (v !== undefined && !DIGEST.test(v)) {
    r.error(
      "wire.digest",
      at + pointer("digest"),
      `${JSON.stringify(v)} is not sha256:<64 lowercase hex>`,
    );
    return undefined;
  }
  return v;
}

/**
 * API_PREFIX is where the Management Interface paths start. The OpenAPI states the reference URLs
 * as `/api/v1/bundles/{digest}` and `/api/v1/deployments/{deploymentId}/{digest}` with nothing
 * before `/api/v1` (no scheme, host or path prefix). The digest's open question 20 asks whether
 * a WFM may serve under a prefix (Symphony uses /v1alpha2/margo/api/v1); the OpenAPI wins, so a
 * prefix, another host or an absolute URL is wire.url-form until the spec says otherwise.
 */
export const API_PREFIX = "/api/v1";

/** bundleUrl is the only url a bundle with this digest may have (OpenAPI DeploymentBundleRef.url). */
export function bundleUrl(digest: string): string {
  return `${API_PREFIX}/bundles/${digest}`;
}

/**
 * deploymentUrl is the url of one deployment's YAML (OpenAPI DeploymentManifestRef.url). The id
 * is one path segment, so characters outside RFC 3986 pchar are percent-encoded.
 */
export function deploymentUrl(deploymentId: string, digest: string): string {
  return `${API_PREFIX}/deployments/${encodeURIComponent(deploymentId)}/${digest}`;
}

/** One RFC 3986 path segment (pchar*, at least one). */
const SEGMENT = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+$/;

/**
 * isDeploymentUrl accepts the url when its id segment percent-decodes to deploymentId, so a
 * peer that encodes a character encodeURIComponent leaves alone is still accepted.
 */
function isDeploymentUrl(url: string, deploymentId: string, digest: string): boolean {
  const head = `${API_PREFIX}/deployments/`;
  const tail = `/${digest}`;
  if (!url.startsWith(head) || !url.endsWith(tail)) return false;
  const segment = url.slice(head.length, url.length - tail.length);
  if (!SEGMENT.test(segment)) return false;
  try {
    return decodeURIComponent(segment) === deploymentId;
  } catch {
    return false;
  }
}

function readBundle(r: Reader, v: JsonValue, at: string): DeploymentBundleRef | undefined {
  const obj = r.object(v, at, "bundle");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["mediaType", "digest", "sizeBytes", "url"], closed: false });
  // The OpenAPI lists bundle.mediaType, bundle.digest and bundle.url as required (dotted names in
  // UnsignedAppStateManifest.required): they apply whenever bundle is an object.
  const mediaType = r.string(obj, "mediaType", at, { required: true });
  if (mediaType !== undefined && mediaType !== BUNDLE_MEDIA_TYPE) {
    r.error(
      "wire.media-type",
      at + pointer("mediaType"),
      `${JSON.stringify(mediaType)} must be ${BUNDLE_MEDIA_TYPE}`,
    );
  }
  const digest = readDigest(r, obj, at);
  const sizeBytes = r.uint64(obj, "sizeBytes", at, { min: 0n });
  const url = r.string(obj, "url", at, { required: true });
  if (url !== undefined && digest !== undefined && url !== bundleUrl(digest)) {
    r.error(
      "wire.url-form",
      at + pointer("url"),
      `${JSON.stringify(url)} must be ${bundleUrl(digest)} (the form /api/v1/bundles/{bundle.digest})`,
    );
  }
  if (mediaType === undefined || digest === undefined || url === undefined) return undefined;
  return { mediaType, digest, url, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
}

function readDeploymentRef(r: Reader, v: JsonValue, at: string): DeploymentManifestRef | undefined {
  const obj = r.object(v, at, "deployment reference");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["deploymentId", "digest", "sizeBytes", "url"], closed: false });
  const deploymentId = r.string(obj, "deploymentId", at, { required: true });
  const digest = readDigest(r, obj, at);
  const sizeBytes = r.uint64(obj, "sizeBytes", at, { min: 0n });
  const url = r.string(obj, "url", at, { required: true });
  if (
    url !== undefined &&
    digest !== undefined &&
    deploymentId !== undefined &&
    !isDeploymentUrl(url, deploymentId, digest)
  ) {
    r.error(
      "wire.url-form",
      at + pointer("url"),
      `${JSON.stringify(url)} must be ${deploymentUrl(deploymentId, digest)} (the form /api/v1/deployments/{deploymentId}/{digest})`,
    );
  }
  if (deploymentId === undefined || digest === undefined || url === undefined) return undefined;
  return { deploymentId, digest, url, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
}

/** readStateManifest maps a parsed UnsignedAppStateManifest, reporting every problem. */
export function readStateManifest(
  tree: JsonValue,
  r: Reader,
): UnsignedAppStateManifest | undefined {
  const obj = r.object(tree, "", "state manifest");
  if (!obj) return undefined;
  r.members(obj, "", { known: ["manifestVersion", "bundle", "deployments"], closed: false });
  const manifestVersion = r.uint64(obj, "manifestVersion", "", { required: true, min: 1n });
  const items = r.array(obj, "deployments", "", { required: true });
  const deployments: DeploymentManifestRef[] = [];
  let complete = items !== undefined;
  // deploymentId names one deployment ("Unique identifier"), and the bundle holds exactly one
  // YAML per reference: two references with one id cannot both be applied.
  const firstIndex = new Map<string, number>();
  items?.forEach((item, i) => {
    const ref = readDeploymentRef(r, item, pointer("deployments", i));
    if (ref) deployments.push(ref);
    else complete = false;
    const id = isJsonObject(item) ? item.deploymentId : undefined;
    if (typeof id !== "string") return;
    const first = firstIndex.get(id);
    if (first === undefined) firstIndex.set(id, i);
    else {
      r.error(
        "wire.duplicate-deployment",
        pointer("deployments", i, "deploymentId"),
        `deploymentId ${JSON.stringify(id)} is already listed at /deployments/${first}`,
      );
    }
  });
  let bundle: DeploymentBundleRef | undefined;
  const at = pointer("bundle");
  if (!Object.hasOwn(obj, "bundle")) {
    r.error(
      "wire.null-bundle",
      at,
      "bundle must be present; it is null when there are no deployments",
    );
    complete = false;
  } else if (obj.bundle === null) {
    if (items !== undefined && items.length > 0) {
      r.error("wire.null-bundle", at, `bundle is null but there are ${items.length} deployment(s)`);
    }
  } else {
    if (items !== undefined && items.length === 0) {
      r.error(
        "wire.null-bundle",
        at,
        "bundle must be null when there are no deployments (no empty archive)",
      );
    }
    bundle = readBundle(r, obj.bundle ?? null, at);
    if (!bundle) complete = false;
  }
  if (manifestVersion === undefined || !complete) return undefined;
  return { manifestVersion, deployments, ...(bundle ? { bundle } : {}) };
}

function writeStateManifest(m: UnsignedAppStateManifest): JsonValue {
  const b = m.bundle;
  return {
    manifestVersion: m.manifestVersion,
    // Absent bundle is written as null, never omitted (OpenAPI DeploymentBundleRef).
    bundle: b
      ? {
          mediaType: (b.mediaType || BUNDLE_MEDIA_TYPE).toLowerCase(),
          digest: b.digest,
          ...(b.sizeBytes !== undefined ? { sizeBytes: b.sizeBytes } : {}),
          url: b.url,
        }
      : null,
    deployments: m.deployments.map((d) => ({
      deploymentId: d.deploymentId,
      digest: d.digest,
      ...(d.sizeBytes !== undefined ? { sizeBytes: d.sizeBytes } : {}),
      url: d.url,
    })),
  };
}

/**
 * encodeStateManifest writes the manifest as canonical JSON (RFC 8785 with exact uint64), the
 * bytes whose sha256 is the manifest ETag (digest 6.1). Throws ValidationError when the value
 * breaks a rule (e.g. manifestVersion 0, bundle present without deployments, a url not of the
 * bundleUrl / deploymentUrl form, a deploymentId listed twice).
 */
export function encodeStateManifest(value: UnsignedAppStateManifest): Uint8Array {
  return encodeJson("state manifest", writeStateManifest(value), readStateManifest);
}

/** decodeStateManifest reads a `GET /api/v1/deployments` body; never throws. */
export function decodeStateManifest(input: Uint8Array | string): Decoded<UnsignedAppStateManifest> {
  return decodeJson(input, readStateManifest);
}
