import { type Problem, pointer, problem, warning } from "../problem.js";
import { parseDigest } from "./digest.js";
import { isRecord, stringMap } from "./manifest.js";
import {
  ANNOTATION_COMPONENT_TYPE,
  ANNOTATION_COMPONENT_VERSION,
  ANNOTATION_MARGO_RESOURCE,
  ANNOTATION_TITLE,
  ANNOTATION_VERSION,
  HELM_CHART_LAYER_MEDIA_TYPE,
  HELM_CONFIG_MEDIA_TYPE,
  MARGO_APP_ARTIFACT_TYPE,
  MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  MARGO_COMPOSE_ARTIFACT_TYPE,
  MARGO_COMPOSE_LAYER_MEDIA_TYPE,
  MARGO_RESOURCE_MEDIA_TYPE_RE,
  OCI_EMPTY_DESCRIPTOR,
  OCI_IMAGE_MANIFEST,
} from "./media-types.js";
import { tagMatchesVersion, versionToTag } from "./reference.js";

/**
 * SemVer 2.0 without a leading `v`; build metadata may be written `+` (SemVer) or `_` (the tag
 * form the description's `revision` regex uses).
 */
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:[+_]([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** What `docker compose publish` writes; named in messages because the spec forbids it. */
const DOCKER_COMPOSE_PROJECT = "application/vnd.docker.compose.project";

interface Layer {
  index: number;
  mediaType: string | undefined;
  annotations: Record<string, string>;
}

/**
 * checkEnvelope checks what every Margo manifest shares (an OCI image manifest with well-formed
 * descriptors) and returns the layers it could read, so the layout checks run even when the
 * envelope is partly broken and all problems come out of one call.
 */
function checkEnvelope(
  manifest: unknown,
  problems: Problem[],
): { m: Record<string, unknown>; layers: Layer[] } | undefined {
  if (!isRecord(manifest)) {
    problems.push(problem("oci.manifest-shape", "", "manifest is not a JSON object"));
    return undefined;
  }
  if (manifest.schemaVersion !== 2) {
    problems.push(problem("oci.manifest-shape", "/schemaVersion", "schemaVersion must be 2"));
  }
  if (manifest.mediaType !== OCI_IMAGE_MANIFEST) {
    problems.push(
      problem(
        "oci.manifest-media-type",
        "/mediaType",
        `mediaType is ${JSON.stringify(manifest.mediaType)}, expected ${OCI_IMAGE_MANIFEST}`,
      ),
    );
  }
  if (isRecord(manifest.config)) checkDescriptor(manifest.config, "/config", problems);
  else problems.push(problem("oci.manifest-shape", "/config", "config descriptor is missing"));
  const layers: Layer[] = [];
  if (!Array.isArray(manifest.layers)) {
    problems.push(problem("oci.manifest-shape", "/layers", "layers must be an array"));
  } else {
    manifest.layers.forEach((layer: unknown, index) => {
      if (!isRecord(layer)) {
        problems.push(
          problem(
            "oci.manifest-shape",
            pointer("layers", index),
            "layer is not a descriptor object",
          ),
        );
        return;
      }
      checkDescriptor(layer, pointer("layers", index), problems);
      layers.push({
        index,
        mediaType: typeof layer.mediaType === "string" ? layer.mediaType : undefined,
        annotations: stringMap(layer.annotations),
      });
    });
  }
  return { m: manifest, layers };
}

function checkDescriptor(d: Record<string, unknown>, at: string, problems: Problem[]): void {
  if (typeof d.mediaType !== "string" || d.mediaType === "") {
    problems.push(problem("oci.manifest-shape", `${at}/mediaType`, "descriptor has no mediaType"));
  }
  if (typeof d.digest !== "string") {
    problems.push(problem("oci.manifest-shape", `${at}/digest`, "descriptor has no digest"));
  } else {
    try {
      parseDigest(d.digest);
    } catch (e) {
      problems.push(problem("oci.digest-invalid", `${at}/digest`, (e as Error).message));
    }
  }
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    problems.push(
      problem("oci.manifest-shape", `${at}/size`, "descriptor size must be a non-negative integer"),
    );
  }
  if (d.annotations !== undefined && !isRecord(d.annotations)) {
    problems.push(
      problem("oci.manifest-shape", `${at}/annotations`, "annotations must be an object"),
    );
  }
}

/**
 * unsafePathReason says why a package path could leave the package (undefined when it cannot):
 * pullers write layers to their title and publishers read catalog paths from the package
 * directory, so both refuse the same paths.
 */
export function unsafePathReason(path: string): string | undefined {
  if (path === "") return "the path is empty";
  if (path.startsWith("/") || /^[a-zA-Z]:/.test(path))
    return "the path is absolute; package paths are relative to the package";
  if (path.includes("\\")) return "the path contains a backslash";
  const segments = path.split("/");
  if (segments.includes("..")) return "the path contains a .. segment";
  if (segments.some((seg) => seg === "" || seg === "."))
    return "the path has an empty or . segment";
  return undefined;
}

/** isSafeRelativePath: pullers write layers to their title, so a title must stay inside the target. */
function isSafeRelativePath(path: string): boolean {
  return unsafePathReason(path) === undefined;
}

/**
 * validatePackageManifest checks an Application Package manifest against the Margo layout
 * (checklist 78-79). `tag` and `version` (the description's metadata.version) enable the
 * tag-equals-version rule; pullers pass both once the description layer has been read.
 */
export function validatePackageManifest(
  manifest: unknown,
  opts: { tag?: string; version?: string } = {},
): Problem[] {
  const problems: Problem[] = [];
  const env = checkEnvelope(manifest, problems);
  if (env) {
    const { m, layers } = env;
    if (m.artifactType !== MARGO_APP_ARTIFACT_TYPE) {
      problems.push(
        problem(
          "oci.package-artifact-type",
          "/artifactType",
          `artifactType is ${JSON.stringify(m.artifactType)}, expected ${MARGO_APP_ARTIFACT_TYPE}`,
        ),
      );
    }
    checkEmptyConfig(m.config, problems);
    checkPackageLayers(layers, problems);
  }
  checkTagIsVersion(
    opts.tag,
    opts.version,
    problems,
    (tag, version) =>
      `package tag ${JSON.stringify(tag)} differs from metadata.version ${JSON.stringify(version)} (expected tag ${JSON.stringify(versionToTag(version))})`,
  );
  return problems;
}

/**
 * checkTagIsVersion reports a tag that is not the version's tag form (`+` written `_`), the rule all
 * three layouts share; it stays silent when either is unknown (a pull by digest has no tag).
 */
function checkTagIsVersion(
  tag: string | undefined,
  version: string | undefined,
  problems: Problem[],
  message: (tag: string, version: string) => string,
): void {
  if (tag === undefined || version === undefined || tagMatchesVersion(tag, version)) return;
  problems.push(problem("oci.tag-version-mismatch", "", message(tag, version)));
}

function checkEmptyConfig(config: unknown, problems: Problem[]): void {
  if (!isRecord(config)) return;
  const want = OCI_EMPTY_DESCRIPTOR;
  const diffs: string[] = [];
  if (config.mediaType !== want.mediaType)
    diffs.push(`mediaType ${JSON.stringify(config.mediaType)}`);
  if (config.digest !== want.digest) diffs.push(`digest ${JSON.stringify(config.digest)}`);
  if (config.size !== want.size) diffs.push(`size ${JSON.stringify(config.size)}`);
  if (config.data !== undefined && config.data !== want.data)
    diffs.push(`data ${JSON.stringify(config.data)}`);
  if (diffs.length > 0) {
    problems.push(
      problem(
        "oci.package-config",
        "/config",
        `config must be the OCI empty descriptor (${want.mediaType}, ${want.digest}, size 2); got ${diffs.join(", ")}`,
      ),
    );
  }
}

function checkPackageLayers(layers: readonly Layer[], problems: Problem[]): void {
  const descriptions = layers.filter((l) => l.mediaType === MARGO_APP_DESCRIPTION_MEDIA_TYPE);
  const titledDescription = layers.filter(
    (l) =>
      l.annotations[ANNOTATION_TITLE] === "margo.yaml" &&
      l.mediaType !== MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  );
  for (const l of titledDescription) {
    problems.push(
      problem(
        "oci.description-media-type",
        pointer("layers", l.index, "mediaType"),
        `the margo.yaml layer has media type ${JSON.stringify(l.mediaType)}, expected ${MARGO_APP_DESCRIPTION_MEDIA_TYPE}`,
      ),
    );
  }
  if (descriptions.length === 0 && titledDescription.length === 0) {
    problems.push(
      problem(
        "oci.description-layer",
        "/layers",
        "the package has no description (margo.yaml) layer",
      ),
    );
  }
  if (descriptions.length + titledDescription.length > 1) {
    problems.push(
      problem(
        "oci.description-layer",
        "/layers",
        `the package has ${descriptions.length + titledDescription.length} description layers; exactly one is allowed`,
      ),
    );
  }
  for (const l of descriptions) {
    const title = l.annotations[ANNOTATION_TITLE];
    if (title !== "margo.yaml") {
      problems.push(
        problem(
          "oci.title-annotation",
          pointer("layers", l.index, "annotations", ANNOTATION_TITLE),
          `the description layer must be titled "margo.yaml", got ${JSON.stringify(title)}`,
        ),
      );
    }
  }
  for (const l of layers) {
    if (l.mediaType === MARGO_APP_DESCRIPTION_MEDIA_TYPE || titledDescription.includes(l)) continue;
    const match = l.mediaType === undefined ? null : MARGO_RESOURCE_MEDIA_TYPE_RE.exec(l.mediaType);
    if (!match) {
      problems.push(
        problem(
          "oci.resource-media-type",
          pointer("layers", l.index, "mediaType"),
          `layer media type ${JSON.stringify(l.mediaType)} is neither the description nor application/vnd.margo.app.{icon|descriptionFile|licenseFile|releaseNotes}.v1+<fmt>`,
        ),
      );
    }
    if (l.annotations[ANNOTATION_MARGO_RESOURCE] === undefined) {
      problems.push(
        problem(
          "oci.resource-annotation",
          pointer("layers", l.index, "annotations"),
          `resource layer lacks the ${ANNOTATION_MARGO_RESOURCE} annotation`,
        ),
      );
    }
    const title = l.annotations[ANNOTATION_TITLE];
    if (title === undefined || !isSafeRelativePath(title)) {
      problems.push(
        problem(
          "oci.title-annotation",
          pointer("layers", l.index, "annotations", ANNOTATION_TITLE),
          title === undefined
            ? "resource layer has no title annotation (its package-relative path)"
            : `resource title ${JSON.stringify(title)} is not a safe package-relative path`,
        ),
      );
    }
  }
}

/**
 * validateComponentManifest checks a Compose component manifest (checklist 81). `tag` is the tag it
 * was pulled by and `revision` the description's revision; both must equal the version annotation.
 */
export function validateComponentManifest(
  manifest: unknown,
  opts: { tag?: string; revision?: string } = {},
): Problem[] {
  const problems: Problem[] = [];
  const env = checkEnvelope(manifest, problems);
  if (!env) return problems;
  const { m, layers } = env;
  if (m.artifactType !== MARGO_COMPOSE_ARTIFACT_TYPE) {
    const publish =
      m.artifactType === DOCKER_COMPOSE_PROJECT
        ? " (docker compose publish output must not be used)"
        : "";
    problems.push(
      problem(
        "oci.component-artifact-type",
        "/artifactType",
        `artifactType is ${JSON.stringify(m.artifactType)}, expected ${MARGO_COMPOSE_ARTIFACT_TYPE}${publish}`,
      ),
    );
  }
  if (Array.isArray(m.layers) && m.layers.length !== 1) {
    problems.push(
      problem(
        "oci.component-layer-count",
        "/layers",
        `a Compose component has exactly one layer, found ${m.layers.length}`,
      ),
    );
  }
  const layer = layers[0];
  if (!layer) return problems;
  if (layer.mediaType !== MARGO_COMPOSE_LAYER_MEDIA_TYPE) {
    problems.push(
      problem(
        "oci.component-layer-media-type",
        pointer("layers", 0, "mediaType"),
        `layer media type is ${JSON.stringify(layer.mediaType)}, expected ${MARGO_COMPOSE_LAYER_MEDIA_TYPE}`,
      ),
    );
  }
  const manifestAnnotations = stringMap(m.annotations);
  const annotation = (key: string, rule: string): string | undefined => {
    const onLayer = layer.annotations[key];
    if (onLayer !== undefined) return onLayer;
    const onManifest = manifestAnnotations[key];
    if (onManifest !== undefined) {
      // The spec's own `oras push --annotation` recipe writes manifest annotations; accept, but say so.
      problems.push(
        warning(
          rule,
          pointer("annotations", key),
          `${key} is on the manifest; the spec asks for it on the layer`,
        ),
      );
      return onManifest;
    }
    return undefined;
  };
  const at = (key: string) => pointer("layers", 0, "annotations", key);
  const type = annotation(ANNOTATION_COMPONENT_TYPE, "oci.component-type-annotation");
  if (type !== "compose") {
    problems.push(
      problem(
        "oci.component-type-annotation",
        at(ANNOTATION_COMPONENT_TYPE),
        type === undefined
          ? `the layer lacks the required ${ANNOTATION_COMPONENT_TYPE} annotation`
          : `${ANNOTATION_COMPONENT_TYPE} is ${JSON.stringify(type)}, expected "compose"`,
      ),
    );
  }
  const version = annotation(ANNOTATION_COMPONENT_VERSION, "oci.component-version-annotation");
  if (version === undefined) {
    problems.push(
      problem(
        "oci.component-version-annotation",
        at(ANNOTATION_COMPONENT_VERSION),
        `the layer lacks the required ${ANNOTATION_COMPONENT_VERSION} annotation`,
      ),
    );
  } else {
    if (!SEMVER_RE.test(version)) {
      problems.push(
        problem(
          "oci.component-version-annotation",
          at(ANNOTATION_COMPONENT_VERSION),
          `${ANNOTATION_COMPONENT_VERSION} ${JSON.stringify(version)} is not a SemVer 2.0 version without leading "v"`,
        ),
      );
    }
    const ociVersion = layer.annotations[ANNOTATION_VERSION];
    if (ociVersion !== undefined && versionToTag(ociVersion) !== versionToTag(version)) {
      problems.push(
        warning(
          "oci.component-version-annotation",
          at(ANNOTATION_VERSION),
          `${ANNOTATION_VERSION} ${JSON.stringify(ociVersion)} should equal the component version ${JSON.stringify(version)}`,
        ),
      );
    }
    if (opts.tag !== undefined && !tagMatchesVersion(opts.tag, version)) {
      problems.push(
        problem(
          "oci.tag-version-mismatch",
          at(ANNOTATION_COMPONENT_VERSION),
          `component tag ${JSON.stringify(opts.tag)} differs from ${ANNOTATION_COMPONENT_VERSION} ${JSON.stringify(version)}`,
        ),
      );
    }
    if (opts.revision !== undefined && versionToTag(opts.revision) !== versionToTag(version)) {
      problems.push(
        problem(
          "oci.tag-version-mismatch",
          at(ANNOTATION_COMPONENT_VERSION),
          `the description's revision ${JSON.stringify(opts.revision)} differs from ${ANNOTATION_COMPONENT_VERSION} ${JSON.stringify(version)}`,
        ),
      );
    }
  }
  checkTagIsVersion(
    opts.tag,
    opts.revision,
    problems,
    (tag, revision) =>
      `component pulled by tag ${JSON.stringify(tag)} but the description's revision is ${JSON.stringify(revision)}`,
  );
  return problems;
}

/**
 * validateHelmChartManifest checks the standard Helm OCI layout Margo relies on without restating
 * it (digest 3.4): Helm config media type, one chart layer, tag = chart version.
 */
export function validateHelmChartManifest(
  manifest: unknown,
  opts: { tag?: string; version?: string } = {},
): Problem[] {
  const problems: Problem[] = [];
  const env = checkEnvelope(manifest, problems);
  if (!env) return problems;
  const { m, layers } = env;
  const config = isRecord(m.config) ? m.config : {};
  if (config.mediaType !== HELM_CONFIG_MEDIA_TYPE) {
    problems.push(
      problem(
        "oci.helm-config-media-type",
        "/config/mediaType",
        `config media type is ${JSON.stringify(config.mediaType)}, expected ${HELM_CONFIG_MEDIA_TYPE}`,
      ),
    );
  }
  const charts = layers.filter((l) => l.mediaType === HELM_CHART_LAYER_MEDIA_TYPE);
  if (charts.length !== 1) {
    problems.push(
      problem(
        "oci.helm-layer",
        "/layers",
        `expected one ${HELM_CHART_LAYER_MEDIA_TYPE} layer, found ${charts.length}`,
      ),
    );
  }
  checkTagIsVersion(
    opts.tag,
    opts.version,
    problems,
    (tag, version) =>
      `chart tag ${JSON.stringify(tag)} differs from the chart version ${JSON.stringify(version)}`,
  );
  return problems;
}
