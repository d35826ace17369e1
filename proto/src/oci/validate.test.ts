import { describe, expect, it } from "vitest";
import { computeDigest } from "./digest.js";
import {
  MARGO_APP_ARTIFACT_TYPE,
  MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  MARGO_COMPOSE_ARTIFACT_TYPE,
  MARGO_COMPOSE_LAYER_MEDIA_TYPE,
  OCI_EMPTY_DESCRIPTOR,
  OCI_IMAGE_MANIFEST,
  resourceMediaType,
} from "./media-types.js";
import { OCI_RULE_IDS } from "./rules.js";
import {
  validateComponentManifest,
  validateHelmChartManifest,
  validatePackageManifest,
} from "./validate.js";

const d = (s: string) => ({ digest: computeDigest(new TextEncoder().encode(s)), size: s.length });

function packageManifest(): Record<string, unknown> & { layers: Array<Record<string, unknown>> } {
  return {
    schemaVersion: 2,
    mediaType: OCI_IMAGE_MANIFEST,
    artifactType: MARGO_APP_ARTIFACT_TYPE,
    config: { ...OCI_EMPTY_DESCRIPTOR },
    layers: [
      {
        mediaType: MARGO_APP_DESCRIPTION_MEDIA_TYPE,
        ...d("yaml"),
        annotations: { "org.opencontainers.image.title": "margo.yaml" },
      },
      {
        mediaType: resourceMediaType("icon", "resources/icon.png"),
        ...d("png"),
        annotations: {
          "org.opencontainers.image.title": "resources/icon.png",
          "org.margo.app.resource": "icon",
        },
      },
    ],
  };
}

function componentManifest(): Record<string, unknown> & { layers: Array<Record<string, unknown>> } {
  return {
    schemaVersion: 2,
    mediaType: OCI_IMAGE_MANIFEST,
    artifactType: MARGO_COMPOSE_ARTIFACT_TYPE,
    config: { ...OCI_EMPTY_DESCRIPTOR },
    layers: [
      {
        mediaType: MARGO_COMPOSE_LAYER_MEDIA_TYPE,
        ...d("tgz"),
        annotations: {
          "org.margo.component.type": "compose",
          "org.margo.component.version": "1.0.0",
        },
      },
    ],
  };
}

const rules = (ps: ReadonlyArray<{ rule: string; severity: string }>) =>
  ps.filter((p) => p.severity === "error").map((p) => p.rule);

describe("validatePackageManifest", () => {
  it("accepts the Margo layout", () => {
    expect(validatePackageManifest(packageManifest(), { tag: "1.0.0", version: "1.0.0" })).toEqual(
      [],
    );
  });

  it("reports every broken part in one call, each with its rule and pointer", () => {
    const m = packageManifest();
    m.mediaType = "application/vnd.oci.artifact.manifest.v1+json";
    m.artifactType = "application/vnd.org.margo.app.v1+json";
    m.config = { mediaType: "application/json", ...d("{}") };
    m.layers[1] = {
      mediaType: "image/png",
      ...d("png"),
      annotations: { "org.opencontainers.image.title": "../x" },
    };
    const problems = validatePackageManifest(m, { tag: "1.0.1", version: "1.0.0" });
    expect(rules(problems).sort()).toEqual(
      [
        "oci.manifest-media-type",
        "oci.package-artifact-type",
        "oci.package-config",
        "oci.resource-media-type",
        "oci.resource-annotation",
        "oci.title-annotation",
        "oci.tag-version-mismatch",
      ].sort(),
    );
    expect(problems.find((p) => p.rule === "oci.resource-media-type")?.pointer).toBe(
      "/layers/1/mediaType",
    );
  });

  it("requires exactly one description layer with the right media type and title", () => {
    const none = packageManifest();
    none.layers.shift();
    expect(rules(validatePackageManifest(none))).toEqual(["oci.description-layer"]);
    const two = packageManifest();
    two.layers.push({ ...(two.layers[0] as object) });
    expect(rules(validatePackageManifest(two))).toEqual(["oci.description-layer"]);
    const wrongType = packageManifest();
    (wrongType.layers[0] as { mediaType: string }).mediaType = "application/yaml";
    expect(rules(validatePackageManifest(wrongType))).toEqual(["oci.description-media-type"]);
    const wrongTitle = packageManifest();
    (wrongTitle.layers[0] as { annotations: object }).annotations = {
      "org.opencontainers.image.title": "app.yaml",
    };
    expect(rules(validatePackageManifest(wrongTitle))).toEqual(["oci.title-annotation"]);
  });

  it("accepts build metadata written as _ in the tag", () => {
    expect(
      validatePackageManifest(packageManifest(), { tag: "1.0.0_b7", version: "1.0.0+b7" }),
    ).toEqual([]);
  });

  it("never throws on garbage", () => {
    expect(rules(validatePackageManifest(null))).toEqual(["oci.manifest-shape"]);
    expect(rules(validatePackageManifest({ layers: "x", config: 3 }))).toContain(
      "oci.manifest-shape",
    );
    const badDigest = packageManifest();
    (badDigest.layers[1] as { digest: string }).digest = "md5:abc";
    expect(rules(validatePackageManifest(badDigest))).toEqual(["oci.digest-invalid"]);
  });
});

describe("validateComponentManifest", () => {
  it("accepts the Margo Compose layout", () => {
    expect(
      validateComponentManifest(componentManifest(), { tag: "1.0.0", revision: "1.0.0" }),
    ).toEqual([]);
  });

  it("flags each component rule", () => {
    const m = componentManifest();
    m.artifactType = "application/vnd.docker.compose.project";
    (m.layers[0] as { mediaType: string }).mediaType = "application/vnd.docker.compose.file+yaml";
    (m.layers[0] as { annotations: object }).annotations = { "org.margo.component.type": "helm" };
    m.layers.push({ mediaType: MARGO_COMPOSE_LAYER_MEDIA_TYPE, ...d("b") });
    const problems = validateComponentManifest(m);
    expect(rules(problems).sort()).toEqual(
      [
        "oci.component-artifact-type",
        "oci.component-layer-count",
        "oci.component-layer-media-type",
        "oci.component-type-annotation",
        "oci.component-version-annotation",
      ].sort(),
    );
    expect(problems.find((p) => p.rule === "oci.component-artifact-type")?.message).toContain(
      "docker compose publish",
    );
  });

  it("ties the version annotation to the tag and the revision", () => {
    expect(rules(validateComponentManifest(componentManifest(), { tag: "1.0.1" }))).toEqual([
      "oci.tag-version-mismatch",
    ]);
    expect(rules(validateComponentManifest(componentManifest(), { revision: "2.0.0" }))).toEqual([
      "oci.tag-version-mismatch",
    ]);
    const v = componentManifest();
    (v.layers[0] as { annotations: Record<string, string> }).annotations[
      "org.margo.component.version"
    ] = "v1.0.0";
    expect(rules(validateComponentManifest(v))).toEqual(["oci.component-version-annotation"]);
  });
});

describe("validateHelmChartManifest", () => {
  it("checks config media type, chart layer and tag", () => {
    const ok = {
      schemaVersion: 2,
      mediaType: OCI_IMAGE_MANIFEST,
      config: { mediaType: "application/vnd.cncf.helm.config.v1+json", ...d("{}") },
      layers: [{ mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", ...d("t") }],
    };
    expect(validateHelmChartManifest(ok, { tag: "0.1.0", version: "0.1.0" })).toEqual([]);
    const bad = { ...ok, config: { ...OCI_EMPTY_DESCRIPTOR }, layers: [] };
    expect(
      rules(validateHelmChartManifest(bad, { tag: "0.2.0", version: "0.1.0" })).sort(),
    ).toEqual(["oci.helm-config-media-type", "oci.helm-layer", "oci.tag-version-mismatch"]);
  });
});

describe("OCI_RULES", () => {
  it("documents every rule the validators emit", () => {
    const m = packageManifest();
    m.mediaType = "x";
    const emitted = [
      ...validatePackageManifest(null),
      ...validatePackageManifest(m, { tag: "a", version: "b" }),
      ...validateComponentManifest({ ...componentManifest(), layers: [] }),
      ...validateHelmChartManifest({}),
    ].map((p) => p.rule);
    for (const id of emitted) expect(OCI_RULE_IDS.has(id), id).toBe(true);
  });
});
