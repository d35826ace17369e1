import {
  APP_ARCHITECTURE_VALUES,
  SELECTOR_OPERATOR_VALUES,
  SPEC_PATTERNS,
} from "../../spec-facts.js";
import { DATA_TYPES } from "./parameter-value.js";
import type { Field, Kind, Shape, StringCheck } from "./shape.js";

/**
 * The rc.3 Application Description as shapes: one per LinkML class of
 * application-description.linkml.yaml (digest 2.1-2.5), each pattern tagged with the rule id a
 * vendor sees when it fails.
 */

function pattern(rule: string, re: RegExp, expected = `matching ${re.source}`): StringCheck {
  return { rule, test: (s) => re.test(s), expected };
}

function oneOf(rule: string, values: readonly string[]): StringCheck {
  return { rule, test: (s) => values.includes(s), expected: `one of ${values.join(", ")}` };
}

/**
 * Regexes carried over verbatim from the LinkML schema; the ones the wire codecs share
 * (repository, revision, timeout, memory, storage) come from spec-facts.
 */
export const PATTERNS = {
  id: /^[a-z0-9-]{1,200}$/,
  componentName: /^[a-z0-9-]+$/,
  profileType: /^(helm|compose|custom)$/,
  ...SPEC_PATTERNS,
  email: /.*@[a-z0-9.-]*/,
} as const;

/** LinkML CpuArchitectureType (same list as the OpenAPI's). */
export const ARCHITECTURES = APP_ARCHITECTURE_VALUES;
/** LinkML SelectorOperator (same list as the OpenAPI's). */
export const OPERATORS = SELECTOR_OPERATOR_VALUES;

const str: Kind = { kind: "string" };
const req = (type: Kind): Field => ({ type, required: true });
const opt = (type: Kind): Field => ({ type });
const obj = (shape: Shape): Kind => ({ kind: "object", shape });
const list = (items: Kind): Kind => ({ kind: "array", items });

const applicationMetadata: Shape = {
  name: "ApplicationMetadata",
  fields: {
    descriptionFile: opt(str),
    icon: opt(str),
    licenseFile: opt(str),
    releaseNotes: opt(str),
    site: opt(str),
    tagline: opt(str),
    tags: opt(list(str)),
  },
};

const author: Shape = {
  name: "Author",
  fields: {
    name: opt(str),
    email: opt({
      kind: "string",
      check: pattern("description.email-pattern", PATTERNS.email, "an email address"),
    }),
  },
};

const organization: Shape = {
  name: "Organization",
  fields: { name: req(str), site: opt(str) },
};

const catalog: Shape = {
  name: "Catalog",
  fields: {
    application: opt(obj(applicationMetadata)),
    author: opt(list(obj(author))),
    organization: req(list(obj(organization))),
  },
};

const metadata: Shape = {
  name: "Metadata",
  fields: {
    name: req(str),
    description: opt(str),
    version: req(str),
    catalog: req(obj(catalog)),
  },
};

const cpu: Shape = {
  name: "CPU",
  fields: {
    cores: req({ kind: "number" }),
    architectures: opt(
      list({ kind: "string", check: oneOf("description.architecture-enum", ARCHITECTURES) }),
    ),
  },
};

const capacityRequirements: Shape = {
  name: "CapacityRequirements",
  fields: {
    cpu: opt(obj(cpu)),
    memory: opt({
      kind: "string",
      check: pattern("description.memory-pattern", PATTERNS.memory),
    }),
    storage: opt({
      kind: "string",
      check: pattern("description.storage-pattern", PATTERNS.storage),
    }),
  },
};

// Selector and MatchExpression refer to each other (itemSelector), so the fields are filled in
// after both objects exist.
const matchExpressionFields: Record<string, Field> = {};
const selector: Shape = { name: "Selector", fields: {} };
const matchExpression: Shape = { name: "MatchExpression", fields: matchExpressionFields };
Object.assign(matchExpressionFields, {
  key: req(str),
  operator: req({ kind: "string", check: oneOf("description.operator-enum", OPERATORS) }),
  values: opt({ kind: "scalar-or-list" }),
  itemSelector: opt(obj(selector)),
});
Object.assign(selector.fields, { matchExpressions: req(list(obj(matchExpression))) });

const eligibilityRule: Shape = {
  name: "EligibilityRule",
  fields: { propertySelector: opt(obj(selector)), labelSelector: opt(obj(selector)) },
};

const deviceConstraints: Shape = {
  name: "DeviceConstraints",
  fields: {
    capacityRequirements: opt(obj(capacityRequirements)),
    eligibilityRules: opt(list(obj(eligibilityRule))),
  },
};

const componentProperties: Shape = {
  name: "ComponentProperties",
  fields: {
    repository: req({
      kind: "string",
      check: pattern("description.repository-scheme", PATTERNS.repository, "an oci:// URI"),
    }),
    revision: req({
      kind: "string",
      check: pattern(
        "description.revision-semver",
        PATTERNS.revision,
        "a SemVer 2.0 version without a leading v, build metadata after _ (e.g. 1.2.3, 1.0.0-rc1, 1.0.0_build.1)",
      ),
    }),
    wait: opt({ kind: "boolean" }),
    timeout: opt({
      kind: "string",
      check: pattern("description.timeout-pattern", PATTERNS.timeout, "like 5m0s (^\\d+m\\d+s$)"),
    }),
  },
};

const component: Shape = {
  name: "Component",
  extensions: true,
  fields: {
    name: req({
      kind: "string",
      check: pattern(
        "description.component-name-pattern",
        PATTERNS.componentName,
        "lowercase letters, digits and dashes",
      ),
    }),
    properties: req(obj(componentProperties)),
  },
};

const deploymentProfile: Shape = {
  name: "DeploymentProfile",
  extensions: true,
  fields: {
    type: req({
      kind: "string",
      check: pattern("description.profile-type", PATTERNS.profileType, "helm, compose or custom"),
    }),
    id: req(str),
    description: opt(str),
    deviceConstraints: opt(obj(deviceConstraints)),
    components: req(list(obj(component))),
  },
};

const target: Shape = {
  name: "Target",
  fields: { pointer: req(str), components: req(list(str)) },
};

const parameter: Shape = {
  name: "Parameter",
  fields: { value: opt({ kind: "scalar-or-list" }), targets: req(list(obj(target))) },
};

const setting: Shape = {
  name: "Setting",
  fields: {
    parameter: req(str),
    name: req(str),
    description: opt(str),
    immutable: opt({ kind: "boolean" }),
    schema: req(str),
  },
};

const section: Shape = {
  name: "Section",
  fields: { name: req(str), settings: req(list(obj(setting))) },
};

/**
 * One shape for every schema subtype (Text, Boolean, NumericInteger, NumericDouble, Select):
 * rc.3 selects the subtype implicitly from dataType and the fields present, so a rule may carry
 * any of them; minValue/maxValue are numbers because the double subtype allows fractions.
 */
const schemaRule: Shape = {
  name: "Schema",
  fields: {
    name: req(str),
    dataType: req({
      kind: "string",
      check: oneOf("description.schema-data-type", DATA_TYPES),
    }),
    allowEmpty: opt({ kind: "boolean" }),
    minLength: opt({ kind: "integer" }),
    maxLength: opt({ kind: "integer" }),
    regexMatch: opt(str),
    minValue: opt({ kind: "number" }),
    maxValue: opt({ kind: "number" }),
    minPrecision: opt({ kind: "integer" }),
    maxPrecision: opt({ kind: "integer" }),
    multiselect: opt({ kind: "boolean" }),
    options: opt(list(str)),
  },
};

const configuration: Shape = {
  name: "Configuration",
  fields: { sections: req(list(obj(section))), schema: req(list(obj(schemaRule))) },
};

/** The root of margo.yaml. */
export const APPLICATION_DESCRIPTION_SHAPE: Shape = {
  name: "ApplicationDescription",
  extensions: true,
  fields: {
    apiVersion: req({
      kind: "string",
      check: { rule: "description.api-version", test: (s) => s === "v1", expected: '"v1"' },
    }),
    id: req({
      kind: "string",
      check: pattern(
        "description.id-pattern",
        PATTERNS.id,
        "1-200 lowercase letters, digits and dashes",
      ),
    }),
    metadata: req(obj(metadata)),
    deploymentProfiles: req(list(obj(deploymentProfile))),
    parameters: opt({ kind: "map", values: obj(parameter) }),
    configuration: opt(obj(configuration)),
  },
};
