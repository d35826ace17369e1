/** OciRule explains one OCI-level rule id so reports can say what broke and where the spec says so. */
export interface OciRule {
  readonly id: string;
  readonly text: string;
  /** Where the requirement comes from: digest section and checklist item, or the OCI spec. */
  readonly source: string;
}

/** Every rule id the OCI layer validators and pull functions emit. */
export const OCI_RULES: readonly OciRule[] = [
  {
    id: "oci.manifest-shape",
    text: "The manifest is a JSON object with schemaVersion 2, a config descriptor and a layers array of well-formed descriptors",
    source: "OCI image-spec manifest.md; digest 3.2",
  },
  {
    id: "oci.manifest-media-type",
    text: "Packages and components are OCI image manifests (application/vnd.oci.image.manifest.v1+json)",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.package-artifact-type",
    text: "An application package manifest has artifactType application/vnd.margo.app.v1+json",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.package-config",
    text: "An application package's config is the OCI empty descriptor",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.description-layer",
    text: "A package has exactly one description layer (margo.yaml)",
    source: "digest 3.1-3.2; checklist 78",
  },
  {
    id: "oci.description-media-type",
    text: "The description layer has media type application/vnd.margo.app.description.v1+yaml",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.resource-media-type",
    text: "Every other package layer is a resource: application/vnd.margo.app.{icon|descriptionFile|licenseFile|releaseNotes}.v1+<fmt>",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.resource-annotation",
    text: "Resource layers carry the org.margo.app.resource annotation",
    source: "digest 3.2; checklist 78",
  },
  {
    id: "oci.title-annotation",
    text: "Package layers carry org.opencontainers.image.title: margo.yaml for the description, a safe relative path for resources",
    source: "digest 3.2",
  },
  {
    id: "oci.component-artifact-type",
    text: "A Compose component manifest has artifactType application/vnd.org.margo.component.compose+json (not docker compose publish output)",
    source: "digest 3.3; checklist 81",
  },
  {
    id: "oci.component-layer-count",
    text: "A Compose component manifest has exactly one layer",
    source: "digest 3.3; checklist 81",
  },
  {
    id: "oci.component-layer-media-type",
    text: "The Compose component layer has media type application/vnd.org.margo.component.compose.tar+gzip",
    source: "digest 3.3; checklist 81",
  },
  {
    id: "oci.component-type-annotation",
    text: "The Compose component layer is annotated org.margo.component.type: compose",
    source: "digest 3.3; checklist 81",
  },
  {
    id: "oci.component-version-annotation",
    text: "The Compose component layer is annotated org.margo.component.version with a SemVer without leading v",
    source: "digest 3.3; checklist 81",
  },
  {
    id: "oci.helm-config-media-type",
    text: "A Helm chart manifest's config has media type application/vnd.cncf.helm.config.v1+json",
    source: "Helm OCI format; digest 3.4",
  },
  {
    id: "oci.helm-layer",
    text: "A Helm chart manifest has one chart layer application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    source: "Helm OCI format; digest 3.4",
  },
  {
    id: "oci.tag-version-mismatch",
    text: "A package tag equals metadata.version; a component tag equals its version annotation and the description's revision",
    source: "digest 3.2-3.3; checklists 79, 81",
  },
  {
    id: "oci.digest-invalid",
    text: "Every digest a manifest or registry names is <algorithm>:<encoded> with a registered algorithm (sha256, sha512) and lowercase hex of its length, so it can be verified",
    source:
      "OCI image-spec descriptor.md (digests); digest 3.3 (verify before extract); checklist 74",
  },
  {
    id: "oci.digest-mismatch",
    text: "Pulled bytes hash to the digest (and size) of the descriptor that names them",
    source: "OCI distribution spec; digest 3.3 (verify before extract); checklist 74",
  },
];

/** OCI_RULE_IDS lets tests check that every emitted rule is documented. */
export const OCI_RULE_IDS: ReadonlySet<string> = new Set(OCI_RULES.map((r) => r.id));
