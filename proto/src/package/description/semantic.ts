import { TAG_RE, versionToTag } from "../../oci/reference.js";
import { type Problem, pointer, problem, warning } from "../../problem.js";
import { checkParameterValue, DATA_TYPES, type SchemaRule } from "./parameter-value.js";
import { isPlainObject } from "./shape.js";

/**
 * Rules that span members (uniqueness, references, operator-dependent fields). They run on the
 * raw parsed document even when shape problems exist, so one run reports everything; every
 * access is guarded because the document may be any shape at all.
 */

type Obj = Record<string, unknown>;

function objects(v: unknown): Array<[number, Obj]> {
  if (!Array.isArray(v)) return [];
  return v.flatMap((item, i): Array<[number, Obj]> => (isPlainObject(item) ? [[i, item]] : []));
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function checkSelector(
  sel: unknown,
  path: ReadonlyArray<string | number>,
  keysArePointers: boolean,
  out: Problem[],
): void {
  if (!isPlainObject(sel)) return;
  for (const [i, expr] of objects(sel.matchExpressions)) {
    const at = [...path, "matchExpressions", i];
    const op = str(expr.operator);
    const key = str(expr.key);
    if (keysArePointers && key !== undefined && key !== "" && !key.startsWith("/"))
      out.push(
        problem(
          "description.match-key-pointer",
          pointer(...at, "key"),
          `key ${JSON.stringify(key)} must be a JSON pointer (RFC 6901) such as /${key}`,
        ),
      );
    const values = expr.values;
    const list = Array.isArray(values) ? values : values === undefined ? [] : [values];
    if (op === "In" || op === "NotIn" || op === "Gt" || op === "Lt") {
      if (list.length === 0)
        out.push(
          problem(
            "description.match-values-required",
            values === undefined ? pointer(...at) : pointer(...at, "values"),
            `operator ${op} needs at least one value in values`,
          ),
        );
    }
    if (list.length > 0) {
      const kindOf = (v: unknown) => (typeof v === "bigint" ? "number" : typeof v);
      const kinds = new Set(list.map(kindOf));
      const numeric = list.every((v) => kindOf(v) === "number");
      let why: string | undefined;
      if (kinds.size > 1) why = "values must all be of one type";
      else if (kinds.has("boolean") && list.length > 1) why = "a boolean must be the only value";
      else if ((op === "Gt" || op === "Lt") && (!numeric || list.length !== 1))
        why = `operator ${op} takes exactly one numeric value`;
      if (why) out.push(problem("description.match-values-type", pointer(...at, "values"), why));
    }
    if (op === "ContainsAll" || op === "ContainsAny") {
      if (expr.itemSelector === undefined)
        out.push(
          problem(
            "description.match-item-selector-required",
            pointer(...at),
            `operator ${op} needs an itemSelector`,
          ),
        );
    }
    // Item keys are pointers relative to the array element (digest 2.3, step 4).
    checkSelector(expr.itemSelector, [...at, "itemSelector"], true, out);
  }
}

/**
 * Registry tags of the package and its components MUST equal metadata.version with + written
 * as _ (digest 3.2), so a version no tag can spell makes the package unpublishable.
 */
function checkVersionTag(doc: Obj, out: Problem[]): void {
  const meta = doc.metadata;
  const version = isPlainObject(meta) ? str(meta.version) : undefined;
  if (version === undefined) return;
  const tag = versionToTag(version);
  if (!TAG_RE.test(tag))
    out.push(
      problem(
        "description.version-tag",
        pointer("metadata", "version"),
        `version ${JSON.stringify(version)} gives tag ${JSON.stringify(tag)}, which is not a valid OCI tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})`,
      ),
    );
}

/**
 * The LinkML sets no minimum cardinality, so empty lists are valid, but a package with no
 * profile or a profile with no component has nothing a device could deploy: warn, not reject.
 */
function checkNonEmptyLists(doc: Obj, out: Problem[]): void {
  const empty = (v: unknown) => Array.isArray(v) && v.length === 0;
  if (empty(doc.deploymentProfiles))
    out.push(
      warning(
        "description.empty-list",
        pointer("deploymentProfiles"),
        "deploymentProfiles is empty: the package cannot be deployed anywhere",
      ),
    );
  for (const [p, profile] of objects(doc.deploymentProfiles))
    if (empty(profile.components))
      out.push(
        warning(
          "description.empty-list",
          pointer("deploymentProfiles", p, "components"),
          "components is empty: this deployment profile deploys nothing",
        ),
      );
}

function checkProfiles(doc: Obj, out: Problem[]): Set<string> {
  const componentNames = new Set<string>();
  const profileIds = new Map<string, number>();
  for (const [p, profile] of objects(doc.deploymentProfiles)) {
    const at = ["deploymentProfiles", p];
    const id = str(profile.id);
    if (id !== undefined) {
      const first = profileIds.get(id);
      if (first !== undefined)
        out.push(
          problem(
            "description.profile-id-unique",
            pointer(...at, "id"),
            `profile id ${JSON.stringify(id)} is already used by deploymentProfiles/${first}`,
          ),
        );
      else profileIds.set(id, p);
    }
    const seen = new Map<string, number>();
    for (const [c, comp] of objects(profile.components)) {
      const name = str(comp.name);
      if (name === undefined) continue;
      componentNames.add(name);
      const first = seen.get(name);
      if (first !== undefined)
        out.push(
          problem(
            "description.component-name-unique",
            pointer(...at, "components", c, "name"),
            `component name ${JSON.stringify(name)} is already used by components/${first} of this profile`,
          ),
        );
      else seen.set(name, c);
    }
    const dc = isPlainObject(profile.deviceConstraints) ? profile.deviceConstraints : {};
    const cap = isPlainObject(dc.capacityRequirements) ? dc.capacityRequirements : {};
    const cpu = isPlainObject(cap.cpu) ? cap.cpu : {};
    const desc = str(profile.description);
    if (
      Array.isArray(cpu.architectures) &&
      cpu.architectures.includes("other") &&
      (desc === undefined || desc.trim() === "")
    )
      out.push(
        problem(
          "description.other-arch-description",
          pointer(...at),
          "architectures contains other: describe the CPU architecture in the profile's description",
        ),
      );
    const rules = objects(dc.eligibilityRules);
    for (const [r, rule] of rules) {
      const rat = [...at, "deviceConstraints", "eligibilityRules", r];
      if (rule.propertySelector === undefined && rule.labelSelector === undefined)
        out.push(
          problem(
            "description.eligibility-rule-empty",
            pointer(...rat),
            "an eligibility rule needs a propertySelector and/or a labelSelector",
          ),
        );
      checkSelector(rule.propertySelector, [...rat, "propertySelector"], true, out);
      checkSelector(rule.labelSelector, [...rat, "labelSelector"], false, out);
    }
    if (profile.type === "custom") {
      const missing = rules.length === 0 || rules.some(([, r]) => r.labelSelector === undefined);
      if (missing)
        out.push(
          problem(
            "description.custom-label-selector",
            pointer(...at),
            "a custom profile must carry deviceConstraints.eligibilityRules, each with a labelSelector on labels agreed with the device supplier",
          ),
        );
    }
  }
  return componentNames;
}

function checkParameters(doc: Obj, componentNames: Set<string>, out: Problem[]): void {
  if (!isPlainObject(doc.parameters)) return;
  for (const [name, param] of Object.entries(doc.parameters)) {
    if (!isPlainObject(param)) continue;
    for (const [t, target] of objects(param.targets)) {
      if (!Array.isArray(target.components)) continue;
      target.components.forEach((c, i) => {
        if (typeof c === "string" && !componentNames.has(c))
          out.push(
            problem(
              "description.target-component-unknown",
              pointer("parameters", name, "targets", t, "components", i),
              `no deployment profile has a component named ${JSON.stringify(c)}`,
            ),
          );
      });
    }
  }
}

/**
 * Keeps only the well-typed fields of a schema rule, so a mistyped constraint (already reported
 * as description.type) is ignored rather than compared with a value in a surprising way.
 */
function toSchemaRule(name: string, raw: Obj): SchemaRule {
  const rule: SchemaRule = { name, dataType: str(raw.dataType) ?? "" };
  for (const k of [
    "minLength",
    "maxLength",
    "minValue",
    "maxValue",
    "minPrecision",
    "maxPrecision",
  ] as const)
    if (typeof raw[k] === "number") rule[k] = raw[k];
  for (const k of ["minValue", "maxValue"] as const) {
    const v = raw[k];
    if (typeof v === "bigint") rule[k] = v;
  }
  for (const k of ["allowEmpty", "multiselect"] as const)
    if (typeof raw[k] === "boolean") rule[k] = raw[k];
  if (typeof raw.regexMatch === "string") rule.regexMatch = raw.regexMatch;
  if (Array.isArray(raw.options)) rule.options = raw.options.map(String);
  return rule;
}

/** Fields of each schema subtype, keyed by the element type of dataType (digest 2.5). */
const SUBTYPE_FIELDS: Record<string, readonly string[]> = {
  string: ["allowEmpty", "minLength", "maxLength", "regexMatch"],
  boolean: ["allowEmpty"],
  integer: ["allowEmpty", "minValue", "maxValue"],
  double: ["allowEmpty", "minValue", "maxValue", "minPrecision", "maxPrecision"],
};
const SELECT_FIELDS = ["allowEmpty", "multiselect", "options"];
const RULE_FIELDS = [
  "minLength",
  "maxLength",
  "regexMatch",
  "minValue",
  "maxValue",
  "minPrecision",
  "maxPrecision",
  "multiselect",
  "options",
];

/**
 * The subtype of a schema rule is implied by dataType and the fields present (Select when it has
 * options or multiselect); a field of another subtype is ignored by WFMs, so it is a warning.
 */
function checkSchemaSubtype(rule: Obj, at: ReadonlyArray<string | number>, out: Problem[]): void {
  const dataType = str(rule.dataType);
  const element = dataType?.replace(/^array\[(.*)\]$/, "$1");
  const own = element !== undefined ? SUBTYPE_FIELDS[element] : undefined;
  if (!own) return;
  const isSelect = rule.options !== undefined || rule.multiselect !== undefined;
  if (rule.multiselect !== undefined && rule.options === undefined)
    out.push(
      problem(
        "description.required",
        pointer(...at, "options"),
        "a select schema (multiselect) needs options",
      ),
    );
  const allowed = new Set([...own, ...(isSelect ? SELECT_FIELDS : [])]);
  for (const field of RULE_FIELDS) {
    if (rule[field] !== undefined && !allowed.has(field))
      out.push(
        warning(
          "description.schema-field-mismatch",
          pointer(...at, field),
          `${field} does not apply to dataType ${dataType}; it is ignored`,
        ),
      );
  }
  if (element === "integer")
    for (const field of ["minValue", "maxValue"])
      if (typeof rule[field] === "number" && !Number.isInteger(rule[field]))
        out.push(
          problem(
            "description.type",
            pointer(...at, field),
            `${field} of an integer schema must be an integer`,
          ),
        );
}

function checkConfiguration(doc: Obj, out: Problem[]): void {
  if (!isPlainObject(doc.configuration)) return;
  const cfg = doc.configuration;
  const schemas = new Map<string, SchemaRule>();
  for (const [s, rule] of objects(cfg.schema)) {
    const name = str(rule.name);
    if (name === undefined) continue;
    if (schemas.has(name))
      out.push(
        problem(
          "description.schema-name-unique",
          pointer("configuration", "schema", s, "name"),
          `schema name ${JSON.stringify(name)} is defined twice`,
        ),
      );
    else schemas.set(name, toSchemaRule(name, rule));
    checkSchemaSubtype(rule, ["configuration", "schema", s], out);
    if (typeof rule.regexMatch === "string") {
      try {
        new RegExp(rule.regexMatch);
      } catch (err) {
        out.push(
          problem(
            "description.schema-regex",
            pointer("configuration", "schema", s, "regexMatch"),
            `regexMatch is not a valid regular expression: ${(err as Error).message}`,
          ),
        );
      }
    }
  }
  const params = isPlainObject(doc.parameters) ? doc.parameters : {};
  for (const [s, section] of objects(cfg.sections)) {
    for (const [i, setting] of objects(section.settings)) {
      const at = ["configuration", "sections", s, "settings", i];
      const paramName = str(setting.parameter);
      const schemaName = str(setting.schema);
      const param = paramName !== undefined ? params[paramName] : undefined;
      if (paramName !== undefined && !Object.hasOwn(params, paramName))
        out.push(
          problem(
            "description.setting-parameter-unknown",
            pointer(...at, "parameter"),
            `no parameter named ${JSON.stringify(paramName)}`,
          ),
        );
      const rule = schemaName !== undefined ? schemas.get(schemaName) : undefined;
      if (schemaName !== undefined && rule === undefined)
        out.push(
          problem(
            "description.setting-schema-unknown",
            pointer(...at, "schema"),
            `no configuration.schema rule named ${JSON.stringify(schemaName)}`,
          ),
        );
      // A rule whose own dataType is broken is already reported; judging values by it would
      // only add noise.
      if (
        rule === undefined ||
        !(DATA_TYPES as readonly string[]).includes(rule.dataType) ||
        !isPlainObject(param) ||
        param.value === undefined
      )
        continue;
      for (const f of checkParameterValue(param.value, rule)) {
        out.push(
          problem(
            f.rule,
            pointer("parameters", paramName ?? "", "value"),
            `${f.message}, referenced from ${pointer(...at)}`,
          ),
        );
      }
    }
  }
}

/** Runs every cross-member rule of digest 2.6 on a parsed document. */
export function checkSemantics(doc: unknown): Problem[] {
  const out: Problem[] = [];
  if (!isPlainObject(doc)) return out;
  checkVersionTag(doc, out);
  checkNonEmptyLists(doc, out);
  const names = checkProfiles(doc, out);
  checkParameters(doc, names, out);
  checkConfiguration(doc, out);
  return out;
}
