import type {
  ApplicationDescription,
  Component,
  DeploymentProfile,
  ValidationSchema,
} from "../../gen/margo/model/v1/application_description.js";
import { CpuArchitecture } from "../../gen/margo/model/v1/common.js";
import type {
  DeviceConstraints,
  EligibilityRule,
  MatchExpression,
  Selector,
} from "../../gen/margo/model/v1/device_constraints.js";
import { SelectorOperator } from "../../gen/margo/model/v1/device_constraints.js";
import { normalizeInteger } from "../../wire/json-value.js";
import { APP_ARCHITECTURES, SELECTOR_OPERATORS } from "../../wire/profile-parts.js";
import type { SchemaRule } from "./parameter-value.js";
import { EXTENSION_KEY } from "./shape.js";
import type {
  ApplicationDescriptionDoc,
  ComponentDoc,
  DeploymentProfileDoc,
  DeviceConstraintsDoc,
  MatchExpressionDoc,
  ParameterValue,
  SelectorDoc,
} from "./types.js";

/**
 * Maps a validated margo.yaml document to the generated protobuf model and back. The YAML keeps
 * extensions inline and enums as the spec's strings; the model keeps extensions in a map and
 * enums as numbers, so the WFM can store and send descriptions over gRPC. The mapping is only
 * total on documents validateDescription accepted.
 */

type Extensible = Record<string, unknown>;

function extensionsOf(o: object): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(o))
    if (EXTENSION_KEY.test(k) && v && typeof v === "object") out[k] = v as Record<string, unknown>;
  return out;
}

/**
 * google.protobuf.Value holds doubles, so an integer beyond 2^53 (a bigint in doc) becomes the
 * nearest double here. Chosen over rejecting: such a value is a valid integer by the spec, so
 * the document stays valid, doc keeps it exact, and validateDescription warns with
 * description.integer-precision at every place the model rounds.
 */
function toModelValue<T>(v: T): T extends bigint ? number : T {
  const out = typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(toModelValue) : v;
  return out as T extends bigint ? number : T;
}

function selectorToModel(s: SelectorDoc | undefined): Selector | undefined {
  if (!s) return undefined;
  return { matchExpressions: s.matchExpressions.map(matchToModel) };
}

function matchToModel(m: MatchExpressionDoc): MatchExpression {
  const out: MatchExpression = {
    key: m.key,
    operator:
      SELECTOR_OPERATORS.fromWire(m.operator) ?? SelectorOperator.SELECTOR_OPERATOR_UNSPECIFIED,
  };
  if (m.values !== undefined)
    out.values = (Array.isArray(m.values) ? m.values : [m.values]).map(toModelValue);
  const item = selectorToModel(m.itemSelector);
  if (item) out.itemSelector = item;
  return out;
}

function constraintsToModel(dc: DeviceConstraintsDoc): DeviceConstraints {
  const out: DeviceConstraints = {
    eligibilityRules: (dc.eligibilityRules ?? []).map((r) => {
      const rule: EligibilityRule = {};
      const p = selectorToModel(r.propertySelector);
      const l = selectorToModel(r.labelSelector);
      if (p) rule.propertySelector = p;
      if (l) rule.labelSelector = l;
      return rule;
    }),
  };
  const cap = dc.capacityRequirements;
  if (cap) {
    out.capacityRequirements = {
      ...(cap.cpu && {
        cpu: {
          cores: cap.cpu.cores,
          architectures: (cap.cpu.architectures ?? []).map(
            (a) => APP_ARCHITECTURES.fromWire(a) ?? CpuArchitecture.CPU_ARCHITECTURE_UNSPECIFIED,
          ),
        },
      }),
      ...(cap.memory !== undefined && { memory: cap.memory }),
      ...(cap.storage !== undefined && { storage: cap.storage }),
    };
  }
  return out;
}

function componentToModel(c: ComponentDoc): Component {
  return {
    name: c.name,
    properties: { ...c.properties },
    extensions: extensionsOf(c),
  };
}

function profileToModel(p: DeploymentProfileDoc): DeploymentProfile {
  return {
    type: p.type,
    id: p.id,
    ...(p.description !== undefined && { description: p.description }),
    ...(p.deviceConstraints && { deviceConstraints: constraintsToModel(p.deviceConstraints) }),
    components: p.components.map(componentToModel),
    extensions: extensionsOf(p),
  };
}

function schemaToModel(s: SchemaRule): ValidationSchema {
  const { minValue, maxValue, options, ...rest } = s;
  const out: ValidationSchema = { ...rest, options: options ?? [] };
  // The oneof keeps whether the document wrote an integer bound or a fractional one, so the
  // YAML written back says "30", not "30.0", and an integer schema gets an int64 bound.
  const intBound = s.dataType === "integer" || s.dataType === "array[integer]";
  if (minValue !== undefined)
    out.minValue =
      intBound && (typeof minValue === "bigint" || Number.isInteger(minValue))
        ? { $case: "minInteger", value: BigInt(minValue) }
        : { $case: "minDouble", value: Number(minValue) };
  if (maxValue !== undefined)
    out.maxValue =
      intBound && (typeof maxValue === "bigint" || Number.isInteger(maxValue))
        ? { $case: "maxInteger", value: BigInt(maxValue) }
        : { $case: "maxDouble", value: Number(maxValue) };
  return out;
}

/** An int64 bound back as a number while exact, as a bigint beyond 2^53 (like parse.ts). */
function exact(v: number | bigint): number | bigint {
  return typeof v === "bigint" ? normalizeInteger(v) : v;
}

/** The generated model of a document validateDescription accepted. */
export function toModel(doc: ApplicationDescriptionDoc): ApplicationDescription {
  const { catalog } = doc.metadata;
  return {
    apiVersion: doc.apiVersion,
    id: doc.id,
    metadata: {
      name: doc.metadata.name,
      ...(doc.metadata.description !== undefined && { description: doc.metadata.description }),
      version: doc.metadata.version,
      catalog: {
        ...(catalog.application && {
          application: { ...catalog.application, tags: catalog.application.tags ?? [] },
        }),
        author: (catalog.author ?? []).map((a) => ({ ...a })),
        organization: catalog.organization.map((o) => ({ ...o })),
      },
    },
    deploymentProfiles: doc.deploymentProfiles.map(profileToModel),
    parameters: Object.fromEntries(
      Object.entries(doc.parameters ?? {}).map(([name, p]) => [
        name,
        {
          ...(p.value !== undefined && { value: toModelValue(p.value) }),
          targets: p.targets.map((t) => ({ pointer: t.pointer, components: [...t.components] })),
        },
      ]),
    ),
    ...(doc.configuration && {
      configuration: {
        sections: doc.configuration.sections.map((s) => ({
          name: s.name,
          settings: s.settings.map((x) => ({ ...x })),
        })),
        schema: doc.configuration.schema.map(schemaToModel),
      },
    }),
    extensions: extensionsOf(doc),
  };
}

// ---- model -> document ----------------------------------------------------------------------

function withExtensions<T extends object>(
  base: T,
  ext: Record<string, Record<string, unknown> | undefined>,
): T {
  const out = { ...base } as Extensible;
  for (const [k, v] of Object.entries(ext)) if (v !== undefined) out[k] = v;
  return out as T;
}

function selectorToDoc(s: Selector): SelectorDoc {
  return {
    matchExpressions: s.matchExpressions.map((m) => {
      const out: MatchExpressionDoc = {
        key: m.key,
        operator: SELECTOR_OPERATORS.toWire(m.operator) ?? "",
      };
      if (m.values !== undefined) out.values = m.values as ParameterValue;
      if (m.itemSelector) out.itemSelector = selectorToDoc(m.itemSelector);
      return out;
    }),
  };
}

function constraintsToDoc(dc: DeviceConstraints): DeviceConstraintsDoc {
  const out: DeviceConstraintsDoc = {};
  const cap = dc.capacityRequirements;
  if (cap) {
    out.capacityRequirements = {
      ...(cap.cpu && {
        cpu: {
          cores: cap.cpu.cores,
          ...(cap.cpu.architectures.length > 0 && {
            architectures: cap.cpu.architectures.map((a) => APP_ARCHITECTURES.toWire(a) ?? ""),
          }),
        },
      }),
      ...(cap.memory !== undefined && { memory: cap.memory }),
      ...(cap.storage !== undefined && { storage: cap.storage }),
    };
  }
  if (dc.eligibilityRules.length > 0)
    out.eligibilityRules = dc.eligibilityRules.map((r) => ({
      ...(r.propertySelector && { propertySelector: selectorToDoc(r.propertySelector) }),
      ...(r.labelSelector && { labelSelector: selectorToDoc(r.labelSelector) }),
    }));
  return out;
}

function schemaToDoc(s: ValidationSchema): SchemaRule {
  const { minValue, maxValue, options, ...rest } = s;
  const out: SchemaRule = { ...rest };
  for (const k of Object.keys(out) as Array<keyof SchemaRule>)
    if (out[k] === undefined) delete out[k];
  if (minValue) out.minValue = exact(minValue.value);
  if (maxValue) out.maxValue = exact(maxValue.value);
  if (options.length > 0) out.options = [...options];
  return out;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The margo.yaml document shape of a model, in the spec's member order. */
export function fromModel(m: ApplicationDescription): ApplicationDescriptionDoc {
  const md = m.metadata;
  const catalog = md?.catalog;
  const doc: ApplicationDescriptionDoc = {
    apiVersion: m.apiVersion,
    id: m.id,
    metadata: dropUndefined({
      name: md?.name ?? "",
      description: md?.description,
      version: md?.version ?? "",
      catalog: dropUndefined({
        application: catalog?.application
          ? dropUndefined({
              ...catalog.application,
              tags: catalog.application.tags.length > 0 ? [...catalog.application.tags] : undefined,
            })
          : undefined,
        author:
          catalog && catalog.author.length > 0
            ? catalog.author.map((a) => dropUndefined({ ...a }))
            : undefined,
        organization: (catalog?.organization ?? []).map((o) => dropUndefined({ ...o })),
      }),
    }),
    deploymentProfiles: m.deploymentProfiles.map((p) =>
      withExtensions(
        dropUndefined({
          type: p.type,
          id: p.id,
          description: p.description,
          deviceConstraints: p.deviceConstraints
            ? constraintsToDoc(p.deviceConstraints)
            : undefined,
          components: p.components.map((c) =>
            withExtensions(
              {
                name: c.name,
                properties: dropUndefined({
                  ...(c.properties ?? { repository: "", revision: "" }),
                }),
              },
              c.extensions,
            ),
          ),
        }),
        p.extensions,
      ),
    ),
  };
  const params = Object.entries(m.parameters);
  if (params.length > 0)
    doc.parameters = Object.fromEntries(
      params.map(([name, p]) => [
        name,
        dropUndefined({
          value: p.value as ParameterValue | undefined,
          targets: p.targets.map((t) => ({ pointer: t.pointer, components: [...t.components] })),
        }),
      ]),
    );
  if (m.configuration)
    doc.configuration = {
      sections: m.configuration.sections.map((s) => ({
        name: s.name,
        settings: s.settings.map((x) => dropUndefined({ ...x })),
      })),
      schema: m.configuration.schema.map(schemaToDoc),
    };
  return withExtensions(doc, m.extensions);
}
