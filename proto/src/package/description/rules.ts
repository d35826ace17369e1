/**
 * One entry per rule the Application Description validator can report. Reports, the CLI and the
 * conformance suite look rules up here so a vendor reading "description.timeout-pattern" also
 * reads what it means and where the spec says so, without the validator's source at hand.
 */
export interface DescriptionRule {
  readonly id: string;
  readonly text: string;
  /** Section of shared/docs/margo-digest.md (and the LinkML class) the rule comes from. */
  readonly source: string;
}

/** Every rule id validateDescription can emit, in the order a reader meets them in margo.yaml. */
export const DESCRIPTION_RULES: readonly DescriptionRule[] = [
  {
    id: "description.yaml-syntax",
    text: "margo.yaml must be well-formed YAML (no syntax errors, no duplicate keys).",
    source: "digest 2 (format: one YAML document)",
  },
  {
    id: "description.multi-document",
    text: "margo.yaml must hold exactly one YAML document.",
    source: "digest 2 (format: one YAML document)",
  },
  {
    id: "description.required",
    text: "A required member is missing.",
    source: "digest 2.1-2.5 (Req column), LinkML required: true",
  },
  {
    id: "description.type",
    text: "A member has the wrong JSON/YAML type (e.g. a number where a string is required).",
    source: "digest 2.1-2.5 (Type column), LinkML range",
  },
  {
    id: "description.unknown-member",
    text: "WARNING: a member the rc.3 schema does not define (and that is not an x-<name>-extensions member).",
    source: "digest 2.1-2.5, 12",
  },
  {
    id: "description.api-version",
    text: 'apiVersion must be "v1".',
    source: "digest 2.1, open question 16.2",
  },
  {
    id: "description.id-pattern",
    text: "id must match ^[a-z0-9-]{1,200}$.",
    source: "digest 2.1",
  },
  {
    id: "description.email-pattern",
    text: "metadata.catalog.author[].email must match .*@[a-z0-9.-]*.",
    source: "digest 2.1 (Author)",
  },
  {
    id: "description.profile-type",
    text: "deploymentProfiles[].type must be helm, compose or custom.",
    source: "digest 2.2",
  },
  {
    id: "description.profile-id-unique",
    text: "deploymentProfiles[].id must be unique within the description.",
    source: "digest 2.2, 2.6",
  },
  {
    id: "description.component-name-pattern",
    text: "Component names use lowercase letters, digits and dashes only.",
    source: "digest 2.2 (Component)",
  },
  {
    id: "description.component-name-unique",
    text: "Component names must be unique within a deployment profile.",
    source: "digest 2.2 (Component), 2.6",
  },
  {
    id: "description.repository-scheme",
    text: "components[].properties.repository must match ^oci://.+.",
    source: "digest 2.2 (ComponentProperties)",
  },
  {
    id: "description.revision-semver",
    text: "components[].properties.revision must be SemVer 2.0 without a leading v, build metadata after _ (OpenAPI regex).",
    source: "digest 2.2 (ComponentProperties), OpenAPI appDeploymentProfile",
  },
  {
    id: "description.timeout-pattern",
    text: "components[].properties.timeout must match ^\\d+m\\d+s$ (e.g. 5m0s).",
    source: "digest 2.2 (ComponentProperties)",
  },
  {
    id: "description.memory-pattern",
    text: "capacityRequirements.memory must match ^[0-9]+(Mi|Gi|Ki)$.",
    source: "digest 2.3",
  },
  {
    id: "description.storage-pattern",
    text: "capacityRequirements.storage must match ^[0-9]+(Mi|Gi|Ki|Ti|Pi|Ei)$.",
    source: "digest 2.3",
  },
  {
    id: "description.architecture-enum",
    text: "cpu.architectures[] must be amd64, arm64, arm, riscv64 or other.",
    source: "digest 2.3",
  },
  {
    id: "description.other-arch-description",
    text: "A profile whose cpu.architectures contains other must describe the architecture in description.",
    source: "digest 2.2, 2.3 (CpuArchitectureType other)",
  },
  {
    id: "description.eligibility-rule-empty",
    text: "An eligibility rule needs a propertySelector and/or a labelSelector.",
    source: "digest 2.3 (EligibilityRule)",
  },
  {
    id: "description.operator-enum",
    text: "matchExpressions[].operator must be In, NotIn, Exists, DoesNotExist, Gt, Lt, ContainsAll or ContainsAny.",
    source: "digest 2.3 (MatchExpression)",
  },
  {
    id: "description.match-values-required",
    text: "values (at least one) is required for the In, NotIn, Gt and Lt operators.",
    source: "digest 2.3, LinkML MatchExpression rules",
  },
  {
    id: "description.match-values-type",
    text: "values: strings/numbers of one type or a single boolean; Gt/Lt take exactly one number.",
    source: "digest 2.3 (operators)",
  },
  {
    id: "description.match-item-selector-required",
    text: "itemSelector is required for the ContainsAll and ContainsAny operators.",
    source: "digest 2.3, LinkML MatchExpression rules",
  },
  {
    id: "description.match-key-pointer",
    text: "A property-selector (or item-selector) key must be an RFC 6901 JSON pointer such as /vendor.",
    source: "digest 2.3 (MatchExpression key)",
  },
  {
    id: "description.custom-label-selector",
    text: "A custom profile must have eligibility rules, each with a labelSelector.",
    source: "digest 2.6, 12",
  },
  {
    id: "description.extension-not-object",
    text: "An x-<name>-extensions member must be an object (mapping).",
    source: "digest 12",
  },
  {
    id: "description.target-component-unknown",
    text: "parameters.*.targets[].components[] must name a component of some deployment profile.",
    source: "digest 2.4, 2.6",
  },
  {
    id: "description.schema-data-type",
    text: "configuration.schema[].dataType must be string, integer, double, boolean or array[string|integer|double|boolean].",
    source: "digest 2.5",
  },
  {
    id: "description.schema-field-mismatch",
    text: "WARNING: a schema rule field that does not belong to the subtype its dataType implies (e.g. minLength on an integer).",
    source: "digest 2.5 (schema subtypes)",
  },
  {
    id: "description.schema-name-unique",
    text: "configuration.schema[].name must be unique (settings refer to rules by name).",
    source: "digest 2.5",
  },
  {
    id: "description.schema-regex",
    text: "configuration.schema[].regexMatch must be a valid regular expression.",
    source: "digest 2.5 (TextValidationSchema)",
  },
  {
    id: "description.setting-parameter-unknown",
    text: "configuration.sections[].settings[].parameter must name a parameter.",
    source: "digest 2.5, 2.6",
  },
  {
    id: "description.setting-schema-unknown",
    text: "configuration.sections[].settings[].schema must name a configuration.schema rule.",
    source: "digest 2.5, 2.6",
  },
  {
    id: "description.parameter-value-type",
    text: "A parameter's default value must match the dataType of the schema its setting references.",
    source: "digest 2.4, 2.5",
  },
  {
    id: "description.parameter-value-rule",
    text: "A parameter's default value must satisfy the rules (length, range, regex, options) of its setting's schema.",
    source: "digest 2.5",
  },
  {
    id: "description.version-tag",
    text: "metadata.version, with + written as _, must be a valid OCI tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}); registry tags must equal it.",
    source: "digest 3.2 (tags equal metadata.version)",
  },
  {
    id: "description.empty-list",
    text: "Warning: deploymentProfiles or a profile's components is an empty list; such a package cannot deploy.",
    source: "digest 2.2 (LinkML sets no cardinality)",
  },
  {
    id: "description.integer-precision",
    text: "Warning: an integer beyond 2^53 is kept exact in the document but the model's google.protobuf.Value (a double) holds the nearest double.",
    source: "digest 2.5 (integer dataType); model limit of this implementation",
  },
];

/** Looks a rule up by id so a report can print its text next to a problem. */
export function describeRule(id: string): DescriptionRule | undefined {
  return DESCRIPTION_RULES.find((r) => r.id === id);
}
