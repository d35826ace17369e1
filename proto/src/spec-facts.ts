/**
 * Spec facts the wire codecs and the Application Description validator both enforce. They live
 * once, here, so a change in a later rc cannot leave the two judging the same field differently.
 * Each value is carried over verbatim from the rc.3 schemas named beside it
 * (workload-management-api-1.0.0-rc.3.yaml = OpenAPI; application-description.linkml.yaml = LinkML).
 */

/** Regexes of the component properties and capacity requirements shared by both schemas. */
export const SPEC_PATTERNS = {
  /** OpenAPI applicationDeploymentProfileComponent.properties.repository; LinkML ComponentProperties.repository. */
  repository: /^oci:\/\/.+/,
  /** Semantic version with an optional `_build` suffix: OpenAPI ...properties.revision; LinkML ComponentProperties.revision. */
  revision:
    /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:_([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/,
  /** OpenAPI ...properties.timeout; LinkML ComponentProperties.timeout. */
  timeout: /^\d+m\d+s$/,
  /** OpenAPI CapacityRequirements.memory; LinkML CapacityRequirements.memory. */
  memory: /^[0-9]+(Mi|Gi|Ki)$/,
  /** OpenAPI CapacityRequirements.storage; LinkML CapacityRequirements.storage. */
  storage: /^[0-9]+(Mi|Gi|Ki|Ti|Pi|Ei)$/,
} as const;

/**
 * Architectures an application may require: OpenAPI DeploymentCpuRequirement.architectures.items;
 * LinkML enum CpuArchitectureType. Devices report a narrower list (wire DEVICE_ARCHITECTURES).
 */
export const APP_ARCHITECTURE_VALUES = ["amd64", "arm64", "arm", "riscv64", "other"] as const;

/** Selector operators: OpenAPI MatchExpression.operator; LinkML enum SelectorOperator. */
export const SELECTOR_OPERATOR_VALUES = [
  "In",
  "NotIn",
  "Exists",
  "DoesNotExist",
  "Gt",
  "Lt",
  "ContainsAll",
  "ContainsAny",
] as const;
