import {
  dropKeys,
  layerAt,
  type PulledHead,
  type PushedArtifact,
  pullDescriptor,
  pullHead,
  pushArtifact,
  tagOf,
} from "./artifact.js";
import type { OciClient } from "./client.js";
import { isRecord, layersOf, stringMap } from "./manifest.js";
import {
  ANNOTATION_AUTHORS,
  ANNOTATION_COMPONENT_TYPE,
  ANNOTATION_COMPONENT_VERSION,
  ANNOTATION_DESCRIPTION,
  ANNOTATION_TITLE,
  ANNOTATION_VERSION,
  MARGO_COMPOSE_ARTIFACT_TYPE,
  MARGO_COMPOSE_LAYER_MEDIA_TYPE,
  OCI_EMPTY_BYTES,
  OCI_EMPTY_DESCRIPTOR,
} from "./media-types.js";
import { versionToTag } from "./reference.js";
import { validateComponentManifest } from "./validate.js";

/** The RECOMMENDED OCI annotations of a Compose component layer (digest 3.3). */
export interface ComposeComponentMeta {
  /** org.opencontainers.image.title; by convention the archive's file name. */
  title?: string;
  description?: string;
  authors?: string;
}

/** Overrides for publishing deliberately broken components (OCI-stage fixtures). */
export interface PushComponentOptions {
  tag?: string;
  artifactType?: string;
  layerMediaType?: string;
  dropAnnotations?: readonly string[];
  /** Put the component annotations on the manifest instead of the layer (what `oras --annotation` does). */
  annotationsOnManifest?: boolean;
}

export interface PulledComposeComponent extends PulledHead {
  /** The Compose Archive bytes, digest-verified; undefined when they could not be pulled intact. */
  archive: Uint8Array | undefined;
  /** org.margo.component.version as found on the layer. */
  version: string | undefined;
}

/**
 * pushComposeComponent publishes a Compose Archive the way the spec's oras recipe intends
 * (digest 3.3, checklist 81): the Margo component artifactType, the OCI empty config that
 * `oras push --artifact-type` writes, one tar+gzip layer annotated with type and version, tag =
 * version. No timestamp annotation is added, so the same archive always yields the same digest.
 */
export async function pushComposeComponent(
  client: OciClient,
  repo: string,
  version: string,
  archiveBytes: Uint8Array,
  meta: ComposeComponentMeta = {},
  opts: PushComponentOptions = {},
): Promise<PushedArtifact> {
  const component: Record<string, string> = {
    [ANNOTATION_COMPONENT_TYPE]: "compose",
    [ANNOTATION_COMPONENT_VERSION]: version,
  };
  const oci: Record<string, string> = { [ANNOTATION_VERSION]: version };
  if (meta.title !== undefined) oci[ANNOTATION_TITLE] = meta.title;
  if (meta.description !== undefined) oci[ANNOTATION_DESCRIPTION] = meta.description;
  if (meta.authors !== undefined) oci[ANNOTATION_AUTHORS] = meta.authors;
  const layerAnnotations = dropKeys(
    opts.annotationsOnManifest ? oci : { ...component, ...oci },
    opts.dropAnnotations,
  );
  const manifestAnnotations = opts.annotationsOnManifest
    ? dropKeys(component, opts.dropAnnotations)
    : undefined;
  return pushArtifact(client, repo, opts.tag ?? versionToTag(version), {
    artifactType: opts.artifactType ?? MARGO_COMPOSE_ARTIFACT_TYPE,
    config: {
      bytes: OCI_EMPTY_BYTES,
      mediaType: OCI_EMPTY_DESCRIPTOR.mediaType,
      data: OCI_EMPTY_DESCRIPTOR.data,
    },
    layers: [
      {
        bytes: archiveBytes,
        mediaType: opts.layerMediaType ?? MARGO_COMPOSE_LAYER_MEDIA_TYPE,
        annotations: layerAnnotations,
      },
    ],
    ...(manifestAnnotations ? { annotations: manifestAnnotations } : {}),
  });
}

/**
 * pullComposeComponent pulls a component by tag (or digest), verifies manifest and layer digests
 * before handing the archive out (the spec's "verify before extract"), and validates the layout;
 * `revision` is the description's revision, checked against the version annotation.
 */
export async function pullComposeComponent(
  client: OciClient,
  repo: string,
  reference: string,
  opts: { revision?: string } = {},
): Promise<PulledComposeComponent> {
  const { pulled, head } = await pullHead(client, repo, reference);
  const { problems } = head;
  const result: PulledComposeComponent = { ...head, archive: undefined, version: undefined };
  if (!pulled) return result;
  problems.push(
    ...validateComponentManifest(pulled.manifest, {
      tag: tagOf(reference),
      revision: opts.revision,
    }),
  );
  const layer: unknown = layersOf(pulled.manifest)[0];
  if (isRecord(layer)) {
    result.version = stringMap(layer.annotations)[ANNOTATION_COMPONENT_VERSION];
    result.archive = await pullDescriptor(client, repo, layer, layerAt(0), problems);
  }
  return result;
}
