/**
 * Media types, annotation keys and fixed descriptors of the Margo registry layouts (digest 3.2-3.4).
 * They live in one module so a change in a later spec release (the rc.3 texts already disagree on
 * the package artifactType) is a one-line edit that every producer and validator picks up.
 */

export const OCI_IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Rejected by the registry on this machine and not allowed by Margo: packages are image manifests. */
export const OCI_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json";

export const OCI_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json";
/** The two bytes `{}` that the OCI empty descriptor stands for. */
export const OCI_EMPTY_BYTES: Uint8Array = new TextEncoder().encode("{}");

/** Descriptor of a content-addressed blob as it appears in a manifest. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  urls?: string[];
}

/**
 * The OCI empty descriptor. Margo requires exactly this as a package's config, and `oras push
 * --artifact-type` writes exactly this (including `data: e30=`) for components, so we do too.
 */
export const OCI_EMPTY_DESCRIPTOR: Readonly<OciDescriptor> = Object.freeze({
  mediaType: OCI_EMPTY_MEDIA_TYPE,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  data: "e30=",
});

export const MARGO_APP_ARTIFACT_TYPE = "application/vnd.margo.app.v1+json";
export const MARGO_APP_DESCRIPTION_MEDIA_TYPE = "application/vnd.margo.app.description.v1+yaml";
/** The kinds of package resource named by `metadata.catalog.application`, each its own media type. */
export const MARGO_RESOURCE_KINDS = [
  "icon",
  "descriptionFile",
  "licenseFile",
  "releaseNotes",
] as const;
export type MargoResourceKind = (typeof MARGO_RESOURCE_KINDS)[number];
/** Resource layer media types: `application/vnd.margo.app.<kind>.v1+<fmt>`. */
export const MARGO_RESOURCE_MEDIA_TYPE_RE =
  /^application\/vnd\.margo\.app\.(icon|descriptionFile|licenseFile|releaseNotes)\.v1\+([a-z0-9][a-z0-9.+-]*)$/;
export const ANNOTATION_MARGO_RESOURCE = "org.margo.app.resource";

export const MARGO_COMPOSE_ARTIFACT_TYPE = "application/vnd.org.margo.component.compose+json";
export const MARGO_COMPOSE_LAYER_MEDIA_TYPE =
  "application/vnd.org.margo.component.compose.tar+gzip";
export const ANNOTATION_COMPONENT_TYPE = "org.margo.component.type";
export const ANNOTATION_COMPONENT_VERSION = "org.margo.component.version";

export const HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json";
export const HELM_CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

export const ANNOTATION_TITLE = "org.opencontainers.image.title";
export const ANNOTATION_VERSION = "org.opencontainers.image.version";
export const ANNOTATION_DESCRIPTION = "org.opencontainers.image.description";
export const ANNOTATION_AUTHORS = "org.opencontainers.image.authors";
export const ANNOTATION_CREATED = "org.opencontainers.image.created";

/** File extension to the `+<fmt>` suffix of a resource media type. */
const FORMAT_BY_EXTENSION: Readonly<Record<string, string>> = {
  png: "png",
  jpg: "jpeg",
  jpeg: "jpeg",
  gif: "gif",
  svg: "svg",
  webp: "webp",
  ico: "ico",
  md: "markdown",
  markdown: "markdown",
  pdf: "pdf",
  txt: "plain",
  text: "plain",
  html: "html",
  htm: "html",
  json: "json",
  yaml: "yaml",
  yml: "yaml",
};

/**
 * resourceFormat maps a resource path to its media-type suffix. Unknown extensions fall back to
 * the lowercase extension itself (or `octet-stream`) so a vendor's odd file still gets a
 * well-formed, predictable media type instead of a push failure.
 */
export function resourceFormat(path: string): string {
  const base = path.split("/").pop() ?? path;
  const dot = base.lastIndexOf(".");
  if (dot <= 0 || dot === base.length - 1) return "octet-stream";
  const ext = base.slice(dot + 1).toLowerCase();
  return FORMAT_BY_EXTENSION[ext] ?? ext.replace(/[^a-z0-9.+-]/g, "-");
}

/** resourceMediaType builds the layer media type of one catalog resource. */
export function resourceMediaType(kind: MargoResourceKind, path: string): string {
  return `application/vnd.margo.app.${kind}.v1+${resourceFormat(path)}`;
}
