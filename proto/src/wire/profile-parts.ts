import type {
  Component,
  Parameter,
  ParameterTarget,
} from "../gen/margo/model/v1/application_description.js";
import { CpuArchitecture } from "../gen/margo/model/v1/common.js";
import {
  type CapacityRequirements,
  type DeviceConstraints,
  type EligibilityRule,
  type MatchExpression,
  type Selector,
  SelectorOperator,
} from "../gen/margo/model/v1/device_constraints.js";
import { pointer } from "../problem.js";
import { APP_ARCHITECTURE_VALUES, SELECTOR_OPERATOR_VALUES, SPEC_PATTERNS } from "../spec-facts.js";
import { extensionTree, mustTree } from "./codec.js";
import { enumMap } from "./enum-map.js";
import type { JsonObject, JsonValue } from "./json-value.js";
import { copyJson, flattenExtensions, type Reader } from "./reader.js";

// Readers and writers for the parts an ApplicationDeployment shares with the Application
// Description (components, device constraints, parameters), so both codecs apply the same rules.

/** Applications may require any of these (OpenAPI DeploymentCpuRequirement.architectures). */
export const APP_ARCHITECTURES = enumMap<CpuArchitecture>(
  CpuArchitecture,
  "CPU_ARCHITECTURE_",
  "lower",
  APP_ARCHITECTURE_VALUES,
);
/** In, NotIn, Exists, DoesNotExist, Gt, Lt, ContainsAll, ContainsAny. */
export const SELECTOR_OPERATORS = enumMap<SelectorOperator>(
  SelectorOperator,
  "SELECTOR_OPERATOR_",
  "pascal",
  SELECTOR_OPERATOR_VALUES,
);

/** Patterns of the OpenAPI applicationDeploymentProfileComponent and CapacityRequirements. */
export const PATTERNS = SPEC_PATTERNS;

/** Compose components before rc.3 were a URL plus a PGP key (digest 2.2). */
const LEGACY_COMPONENT_PROPERTIES = {
  packageLocation: "rc.3 components are OCI artifacts: use repository (oci://...) and revision",
  keyLocation: "rc.3 verifies OCI digests instead of PGP keys: use repository and revision",
};

/** readComponent maps one profile component (closed object with extensions). */
export function readComponent(r: Reader, v: JsonValue, at: string): Component | undefined {
  const obj = r.object(v, at, "component");
  if (!obj) return undefined;
  const extensions = r.members(obj, at, {
    known: ["name", "properties"],
    closed: true,
    extensions: true,
  });
  const name = r.string(obj, "name", at, { required: true });
  const pv = r.present(obj, "properties", at, true);
  const here = at + pointer("properties");
  const p = pv === undefined ? undefined : r.object(pv, here, "properties");
  if (!p) return undefined;
  r.members(p, here, {
    known: ["repository", "revision", "wait", "timeout"],
    closed: false,
    legacy: LEGACY_COMPONENT_PROPERTIES,
  });
  const repository = r.string(p, "repository", here, {
    required: true,
    pattern: PATTERNS.repository,
  });
  const revision = r.string(p, "revision", here, { required: true, pattern: PATTERNS.revision });
  const wait = r.boolean(p, "wait", here);
  const timeout = r.string(p, "timeout", here, { pattern: PATTERNS.timeout });
  if (name === undefined || repository === undefined || revision === undefined) return undefined;
  if (Object.hasOwn(p, "timeout") && timeout === undefined) return undefined;
  return {
    name,
    properties: {
      repository,
      revision,
      ...(wait !== undefined ? { wait } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
    },
    extensions,
  };
}

/** writeComponent lays a component out in the spec's field order, extensions last. */
export function writeComponent(c: Component, at: string): JsonValue {
  const out: Record<string, unknown> = {
    name: c.name,
    properties: c.properties
      ? {
          repository: c.properties.repository,
          revision: c.properties.revision,
          wait: c.properties.wait,
          timeout: c.properties.timeout,
        }
      : undefined,
  };
  flattenExtensions(out, extensionTree("component", c.extensions, at), at);
  return out as JsonValue;
}

function readSelector(r: Reader, v: JsonValue, at: string): Selector | undefined {
  const obj = r.object(v, at, "selector");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["matchExpressions"], closed: false });
  const items = r.array(obj, "matchExpressions", at, { required: true });
  if (!items) return undefined;
  const matchExpressions: MatchExpression[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const e = readExpression(r, item, at + pointer("matchExpressions", i));
    if (e) matchExpressions.push(e);
    else ok = false;
  });
  return ok ? { matchExpressions } : undefined;
}

function readExpression(r: Reader, v: JsonValue, at: string): MatchExpression | undefined {
  const obj = r.object(v, at, "match expression");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["key", "operator", "values", "itemSelector"], closed: false });
  const key = r.string(obj, "key", at, { required: true });
  const operator = r.enumValue(obj, "operator", at, SELECTOR_OPERATORS, true);
  const values = r.array(obj, "values", at);
  let itemSelector: Selector | undefined;
  if (Object.hasOwn(obj, "itemSelector")) {
    itemSelector = readSelector(r, obj.itemSelector ?? null, at + pointer("itemSelector"));
    if (!itemSelector) return undefined;
  }
  if (key === undefined || operator === undefined) return undefined;
  if (Object.hasOwn(obj, "values") && values === undefined) return undefined;
  return {
    key,
    operator,
    ...(values !== undefined ? { values: values.map(copyJson) } : {}),
    ...(itemSelector ? { itemSelector } : {}),
  };
}

function readCapacity(r: Reader, v: JsonValue, at: string): CapacityRequirements | undefined {
  const obj = r.object(v, at, "capacityRequirements");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["cpu", "memory", "storage"], closed: false });
  let cpu: CapacityRequirements["cpu"];
  let ok = true;
  if (Object.hasOwn(obj, "cpu")) {
    const here = at + pointer("cpu");
    const c = r.object(obj.cpu, here, "cpu");
    if (c) {
      r.members(c, here, { known: ["cores", "architectures"], closed: false });
      const cores = r.number(c, "cores", here, true);
      const architectures: CpuArchitecture[] = [];
      r.array(c, "architectures", here)?.forEach((item, i) => {
        const a = r.enumItem(item, here + pointer("architectures", i), APP_ARCHITECTURES);
        if (a === undefined) ok = false;
        else architectures.push(a);
      });
      if (cores === undefined) ok = false;
      else cpu = { cores, architectures };
    } else ok = false;
  }
  const memory = r.string(obj, "memory", at, { pattern: PATTERNS.memory });
  const storage = r.string(obj, "storage", at, { pattern: PATTERNS.storage });
  if (Object.hasOwn(obj, "memory") && memory === undefined) ok = false;
  if (Object.hasOwn(obj, "storage") && storage === undefined) ok = false;
  if (!ok) return undefined;
  return {
    ...(cpu ? { cpu } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(storage !== undefined ? { storage } : {}),
  };
}

/** readDeviceConstraints maps deviceConstraints (OpenAPI DeviceConstraints). */
export function readDeviceConstraints(
  r: Reader,
  v: JsonValue,
  at: string,
): DeviceConstraints | undefined {
  const obj = r.object(v, at, "deviceConstraints");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["capacityRequirements", "eligibilityRules"], closed: false });
  let ok = true;
  let capacityRequirements: CapacityRequirements | undefined;
  if (Object.hasOwn(obj, "capacityRequirements")) {
    capacityRequirements = readCapacity(
      r,
      obj.capacityRequirements ?? null,
      at + pointer("capacityRequirements"),
    );
    if (!capacityRequirements) ok = false;
  }
  const eligibilityRules: EligibilityRule[] = [];
  r.array(obj, "eligibilityRules", at)?.forEach((item, i) => {
    const here = at + pointer("eligibilityRules", i);
    const rule = r.object(item, here, "eligibility rule");
    if (!rule) {
      ok = false;
      return;
    }
    r.members(rule, here, { known: ["propertySelector", "labelSelector"], closed: false });
    const out: EligibilityRule = {};
    for (const key of ["propertySelector", "labelSelector"] as const) {
      if (!Object.hasOwn(rule, key)) continue;
      const s = readSelector(r, rule[key] ?? null, here + pointer(key));
      if (s) out[key] = s;
      else ok = false;
    }
    eligibilityRules.push(out);
  });
  if (Object.hasOwn(obj, "eligibilityRules") && !Array.isArray(obj.eligibilityRules)) ok = false;
  if (!ok) return undefined;
  return { ...(capacityRequirements ? { capacityRequirements } : {}), eligibilityRules };
}

function writeSelector(s: Selector, at: string): JsonValue {
  return {
    matchExpressions: s.matchExpressions.map((e, i) => ({
      key: e.key,
      operator: SELECTOR_OPERATORS.toWire(e.operator),
      values:
        e.values === undefined
          ? undefined
          : mustTree("selector values", e.values, at + pointer("matchExpressions", i, "values")),
      itemSelector: e.itemSelector
        ? writeSelector(e.itemSelector, at + pointer("matchExpressions", i, "itemSelector"))
        : undefined,
    })),
  } as JsonValue;
}

/** writeDeviceConstraints lays deviceConstraints out in the spec's field order. */
export function writeDeviceConstraints(d: DeviceConstraints, at: string): JsonValue {
  const c = d.capacityRequirements;
  return {
    capacityRequirements: c
      ? {
          cpu: c.cpu
            ? {
                cores: c.cpu.cores,
                architectures: c.cpu.architectures.length
                  ? c.cpu.architectures.map((a) => APP_ARCHITECTURES.toWire(a))
                  : undefined,
              }
            : undefined,
          memory: c.memory,
          storage: c.storage,
        }
      : undefined,
    eligibilityRules: d.eligibilityRules.length
      ? d.eligibilityRules.map((rule, i) => ({
          propertySelector: rule.propertySelector
            ? writeSelector(
                rule.propertySelector,
                at + pointer("eligibilityRules", i, "propertySelector"),
              )
            : undefined,
          labelSelector: rule.labelSelector
            ? writeSelector(
                rule.labelSelector,
                at + pointer("eligibilityRules", i, "labelSelector"),
              )
            : undefined,
        }))
      : undefined,
  } as JsonValue;
}

/**
 * readParameter maps one parameter. In an ApplicationDeployment `value` is required (OpenAPI
 * appParameterValue); in a description it is the optional default. The value keeps its JSON
 * type (string "120" stays a string, 120 a number).
 */
export function readParameter(
  r: Reader,
  v: JsonValue,
  at: string,
  valueRequired: boolean,
): Parameter | undefined {
  const obj = r.object(v, at, "parameter");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["value", "targets"], closed: false });
  const value = r.present(obj, "value", at, valueRequired);
  const items = r.array(obj, "targets", at, { required: true });
  if (!items) return undefined;
  const targets: ParameterTarget[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const here = at + pointer("targets", i);
    const t: JsonObject | undefined = r.object(item, here, "target");
    if (!t) {
      ok = false;
      return;
    }
    r.members(t, here, { known: ["pointer", "components"], closed: false });
    const p = r.string(t, "pointer", here, { required: true });
    const components = r.strings(t, "components", here, true);
    if (p === undefined || components === undefined) ok = false;
    else targets.push({ pointer: p, components });
  });
  if (!ok || (valueRequired && value === undefined)) return undefined;
  return { ...(value !== undefined ? { value: copyJson(value) } : {}), targets };
}

/** writeParameter lays a parameter out as value, then targets. */
export function writeParameter(p: Parameter, at: string): JsonValue {
  return {
    value:
      p.value === undefined
        ? undefined
        : mustTree("parameter value", p.value, at + pointer("value")),
    targets: p.targets.map((t) => ({ pointer: t.pointer, components: t.components })),
  } as JsonValue;
}
