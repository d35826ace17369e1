import { type Problem, pointer, problem } from "../problem.js";
import type { OciClient, PulledManifest } from "./client.js";
import { DigestMismatchError, InvalidDigestError, isDigest, parseDigest } from "./digest.js";
import { OciError } from "./errors.js";
import { encodeManifest, isRecord, type OciImageManifest } from "./manifest.js";
import { OCI_IMAGE_MANIFEST, type OciDescriptor } from "./media-types.js";

/** One blob to push as a layer (or config), with the descriptor fields that travel with it. */
export interface BlobSpec {
  bytes: Uint8Array;
  mediaType: string;
  annotations?: Record<string, string>;
  /** Inline `data` in the descriptor (only the empty config uses it). */
  data?: string;
}

/** What a push produced: enough to print a table row and to pull it back by digest. */
export interface PushedArtifact {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  artifactType: string | undefined;
  /** Bytes of the manifest itself. */
  manifestSize: number;
  /** Sum of config and layer sizes. */
  contentSize: number;
  manifest: OciImageManifest;
  manifestBytes: Uint8Array;
}

/**
 * pushArtifact uploads blobs first and the manifest last, as the distribution spec requires (a
 * registry rejects a manifest whose blobs it does not hold); the three Margo layouts share it.
 */
export async function pushArtifact(
  client: OciClient,
  repository: string,
  tag: string,
  spec: {
    artifactType?: string;
    config: BlobSpec;
    layers: readonly BlobSpec[];
    annotations?: Record<string, string>;
  },
): Promise<PushedArtifact> {
  const describe = async (blob: BlobSpec): Promise<OciDescriptor> => {
    const pushed = await client.pushBlob(repository, blob.bytes);
    const d: OciDescriptor = {
      mediaType: blob.mediaType,
      digest: pushed.digest,
      size: pushed.size,
    };
    if (blob.data !== undefined) d.data = blob.data;
    if (blob.annotations && Object.keys(blob.annotations).length > 0)
      d.annotations = blob.annotations;
    return d;
  };
  const config = await describe(spec.config);
  const layers: OciDescriptor[] = [];
  for (const layer of spec.layers) layers.push(await describe(layer));
  const manifest: OciImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_IMAGE_MANIFEST,
    ...(spec.artifactType !== undefined ? { artifactType: spec.artifactType } : {}),
    config,
    layers,
    ...(spec.annotations && Object.keys(spec.annotations).length > 0
      ? { annotations: spec.annotations }
      : {}),
  };
  const manifestBytes = encodeManifest(manifest);
  const digest = await client.putManifest(repository, tag, manifestBytes, OCI_IMAGE_MANIFEST);
  return {
    repository,
    tag,
    digest,
    mediaType: OCI_IMAGE_MANIFEST,
    artifactType: spec.artifactType,
    manifestSize: manifestBytes.byteLength,
    contentSize: config.size + layers.reduce((n, l) => n + l.size, 0),
    manifest,
    manifestBytes,
  };
}

/** The members every pull result (package, component, chart) starts with. */
export interface PulledHead {
  manifestDigest: string | undefined;
  manifest: unknown;
  problems: Problem[];
}

/**
 * pullHead pulls a manifest and turns a digest failure into a problem instead of an exception
 * (`oci.digest-mismatch` for wrong bytes, `oci.digest-invalid` for a digest the registry announces
 * that cannot be verified; `pulled` is then undefined), so a pull reports it alongside the layout
 * problems; `head` seeds the pull result, so the three layouts start theirs alike.
 */
export async function pullHead(
  client: OciClient,
  repository: string,
  reference: string,
): Promise<{ pulled: PulledManifest | undefined; head: PulledHead }> {
  const problems: Problem[] = [];
  let pulled: PulledManifest | undefined;
  try {
    pulled = await client.getManifest(repository, reference);
  } catch (e) {
    if (e instanceof DigestMismatchError)
      problems.push(problem("oci.digest-mismatch", "", e.message));
    else if (e instanceof InvalidDigestError)
      problems.push(problem("oci.digest-invalid", "", e.message));
    else throw e;
  }
  return { pulled, head: { manifestDigest: pulled?.digest, manifest: pulled?.manifest, problems } };
}

/**
 * pullDescriptor fetches the blob a descriptor names, verifying digest and size; a failure becomes
 * an `oci.digest-mismatch` problem at the descriptor's pointer and the result is undefined. A
 * descriptor whose own digest is malformed is not requested at all and adds no problem here: every
 * caller runs the layout validator, which reports it as `oci.digest-invalid` at the same pointer,
 * and reporting it twice would only be noise. A malformed digest the registry announces for the
 * blob (Docker-Content-Digest) is reported here, as nothing else sees it.
 */
export async function pullDescriptor(
  client: OciClient,
  repository: string,
  descriptor: unknown,
  at: string,
  problems: Problem[],
): Promise<Uint8Array | undefined> {
  if (!isRecord(descriptor) || typeof descriptor.digest !== "string") return undefined;
  try {
    parseDigest(descriptor.digest);
  } catch {
    return undefined;
  }
  const size = typeof descriptor.size === "number" ? descriptor.size : undefined;
  try {
    const bytes = await client.getBlob(repository, descriptor.digest, {
      ...(size !== undefined && size >= 0 ? { maxBytes: size } : {}),
    });
    if (size !== undefined && bytes.byteLength !== size) {
      problems.push(
        problem(
          "oci.digest-mismatch",
          `${at}/size`,
          `blob has ${bytes.byteLength} bytes, descriptor says ${size}`,
        ),
      );
      return undefined;
    }
    return bytes;
  } catch (e) {
    if (e instanceof DigestMismatchError) {
      problems.push(problem("oci.digest-mismatch", `${at}/digest`, e.message));
      return undefined;
    }
    if (e instanceof InvalidDigestError) {
      problems.push(
        problem("oci.digest-invalid", `${at}/digest`, `the registry announced ${e.message}`),
      );
      return undefined;
    }
    if (e instanceof OciError && e.code === "TOO_LARGE") {
      problems.push(
        problem(
          "oci.digest-mismatch",
          `${at}/size`,
          `blob is larger than its descriptor size ${size}`,
        ),
      );
      return undefined;
    }
    throw e;
  }
}

/** layerAt is the JSON pointer of a manifest layer, used by the pull functions' problems. */
export function layerAt(index: number): string {
  return pointer("layers", index);
}

/** tagOf returns the reference when it is a tag (tag rules only apply to tags). */
export function tagOf(reference: string): string | undefined {
  return isDigest(reference) ? undefined : reference;
}

/** dropKeys removes annotation keys (used to publish deliberately broken fixtures). */
export function dropKeys(
  annotations: Record<string, string>,
  keys: readonly string[] | undefined,
): Record<string, string> {
  if (!keys || keys.length === 0) return annotations;
  return Object.fromEntries(Object.entries(annotations).filter(([k]) => !keys.includes(k)));
}
