/** WireRule documents one rule id the wire codecs report, so reports and fixtures can cite it. */
export interface WireRule {
  readonly id: string;
  readonly description: string;
  /** Where the requirement comes from (spec file and schema, or the RFC). */
  readonly source: string;
}

const WMA = "workload-management-api-1.0.0-rc.3.yaml";
const TBA = "trust-bundle-api-1.0.0-rc.3.yaml";

/**
 * WIRE_RULES lists every rule id the codecs in this folder can report. A test checks that every
 * problem the codecs produce names a rule from this list, so the list cannot drift.
 */
export const WIRE_RULES: readonly WireRule[] = [
  {
    id: "wire.syntax",
    description: "body is not UTF-8 JSON/YAML text with unique keys",
    source: "RFC 8259, YAML 1.2",
  },
  {
    id: "wire.depth",
    description: "nesting exceeds the codecs' depth limit (128)",
    source: "implementation limit",
  },
  {
    id: "wire.yaml-type",
    description:
      "YAML node outside the JSON-compatible core schema (!!binary, !!timestamp, !!set, !!omap, !!pairs, local tags, collection keys) or a tagged value that does not fit its tag",
    source: "YAML 1.2.2 section 10.3 (core schema); bodies are JSON-equivalent (RFC 8259)",
  },
  {
    id: "wire.number-range",
    description: "number is NaN or infinite",
    source: "RFC 8259 section 6",
  },
  {
    id: "wire.type",
    description: "member has the wrong JSON type",
    source: `${WMA} components/schemas`,
  },
  {
    id: "wire.required",
    description: "required member is missing",
    source: `${WMA} components/schemas (required)`,
  },
  {
    id: "wire.enum",
    description: "string is not one of the schema's enum values",
    source: `${WMA} components/schemas (enum)`,
  },
  {
    id: "wire.pattern",
    description: "string does not match the schema's pattern",
    source: `${WMA} components/schemas (pattern)`,
  },
  {
    id: "wire.format",
    description: "string is not a URI / URI reference",
    source: `${WMA} ProblemDetail, ${TBA} DiscoveryDocument (format)`,
  },
  {
    id: "wire.unknown-member",
    description: "member not allowed by a closed schema (additionalProperties: false)",
    source: `${WMA} DeviceCapabilitiesManifest, appDeploymentSpec, appDeploymentProfile, applicationDeploymentProfileComponent`,
  },
  {
    id: "wire.ignored-member",
    description:
      "warning: member the open schema tolerates but the model does not hold; it is dropped",
    source: `${WMA} components/schemas (no additionalProperties: false)`,
  },
  {
    id: "wire.legacy-member",
    description: "member of a pre-rc.3 shape (packageLocation, keyLocation, apiVersion, kind ...)",
    source: "margo-digest.md 0.2, 2.2",
  },
  {
    id: "wire.uint64-range",
    description: "unsigned 64-bit integer outside its range (ManifestVersion: [1, 2^64-1])",
    source: `${WMA} ManifestVersion, DeploymentBundleRef.sizeBytes`,
  },
  {
    id: "wire.null-bundle",
    description: "bundle omitted, null with deployments, or an object with no deployments",
    source: `${WMA} DeploymentBundleRef`,
  },
  {
    id: "wire.media-type",
    description: "bundle mediaType is not exactly application/vnd.margo.bundle.v1+tar+gzip",
    source: `${WMA} DeploymentBundleRef.mediaType`,
  },
  {
    id: "wire.digest",
    description: "digest is not sha256:<64 lowercase hex>",
    source: "margo-digest.md 6.2 (Digest Specification)",
  },
  {
    id: "wire.url-form",
    description:
      "bundle.url is not /api/v1/bundles/{bundle.digest}, or deployments[].url is not /api/v1/deployments/{deploymentId}/{digest} (no host, no path prefix)",
    source: `${WMA} DeploymentBundleRef.url, DeploymentManifestRef.url`,
  },
  {
    id: "wire.duplicate-deployment",
    description: "two deployments[] entries have the same deploymentId",
    source: `${WMA} DeploymentManifestRef.deploymentId ("Unique identifier"), DeploymentBundleRef.mediaType (exactly the referenced set)`,
  },
  {
    id: "wire.extension-not-object",
    description: "x-<name>-extensions member is not an object",
    source: `${WMA} patternProperties ^x-[a-z][a-z0-9-]*-extensions$`,
  },
  {
    id: "wire.min-items",
    description: "array has fewer items than minItems",
    source: `${WMA} DeviceCapabilitiesManifest (minItems)`,
  },
  {
    id: "wire.label-value",
    description:
      "label value is not a string, number, boolean or array of all strings or all numbers",
    source: `${WMA} DeviceCapabilitiesManifest.labels`,
  },
  {
    id: "wire.label-empty-array",
    description:
      "warning: label value is an empty array; valid by the labels description, but the schema's oneOf matches it in both array branches so strict validators refuse it",
    source: `${WMA} DeviceCapabilitiesManifest.labels (description vs additionalProperties.oneOf)`,
  },
  {
    id: "wire.https",
    description: "trustBundleUri scheme is not https",
    source: `${TBA} DiscoveryDocument.trustBundleUri`,
  },
  {
    id: "wire.no-x509-anchor",
    description: "SPIFFE bundle carries no x509-svid key",
    source: `${TBA} SpiffeBundle`,
  },
  {
    id: "wire.internal",
    description: "the codec failed unexpectedly; the input is reported instead of crashing",
    source: "implementation",
  },
];

/** WIRE_RULE_IDS is the set of rule ids above, for membership checks. */
export const WIRE_RULE_IDS: ReadonlySet<string> = new Set(WIRE_RULES.map((r) => r.id));
