/**
 * Checks a parameter value against a configuration schema rule (digest 2.5). The description
 * validator uses it for default values; the WFM must apply the same check to values a user
 * supplies before install or update (checklist 63), so it lives here, once, for both.
 */

/** The configuration.schema[] rule in its YAML/JSON shape; all rule fields are optional. */
export interface SchemaRule {
  name: string;
  dataType: string;
  allowEmpty?: boolean;
  minLength?: number;
  maxLength?: number;
  regexMatch?: string;
  /** bigint only beyond 2^53 (see parse.ts), where a number would round the bound. */
  minValue?: number | bigint;
  maxValue?: number | bigint;
  minPrecision?: number;
  maxPrecision?: number;
  multiselect?: boolean;
  options?: string[];
}

/** The dataType values the rc.3 schema allows. */
export const DATA_TYPES = [
  "string",
  "integer",
  "double",
  "boolean",
  "array[string]",
  "array[integer]",
  "array[double]",
  "array[boolean]",
] as const;

export type DataType = (typeof DATA_TYPES)[number];

export interface ValueFinding {
  rule: "description.parameter-value-type" | "description.parameter-value-rule";
  message: string;
}

/** JSON text of a value for messages; bigint (which JSON.stringify refuses) as its digits. */
function show(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}` : v)) ?? String(value);
}

function scalarMatches(value: unknown, type: string): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
    case "double":
      // YAML and JSON write 1 and 1.0 alike as numbers; a whole number is a valid double.
      return typeof value === "bigint" || (typeof value === "number" && Number.isFinite(value));
    default:
      return false;
  }
}

/** Splits "array[integer]" into its element type; scalars give themselves. */
function elementType(dataType: string): { array: boolean; element: string } {
  const m = /^array\[(string|integer|double|boolean)\]$/.exec(dataType);
  return m?.[1] ? { array: true, element: m[1] } : { array: false, element: dataType };
}

/** Number of digits after the decimal point as the value is written (1.25 -> 2, 3 -> 0). */
export function decimalPlaces(n: number): number {
  if (!Number.isFinite(n) || Number.isInteger(n)) return 0;
  const [mantissa = "", exp = "0"] = n.toString().split("e");
  const frac = mantissa.split(".")[1] ?? "";
  return Math.max(0, frac.length - Number(exp));
}

function checkScalarRules(value: unknown, rule: SchemaRule, where: string): ValueFinding[] {
  const out: ValueFinding[] = [];
  const bad = (message: string) =>
    out.push({ rule: "description.parameter-value-rule", message: `${where}${message}` });
  if (typeof value === "string") {
    const len = [...value].length;
    if (rule.minLength !== undefined && len < rule.minLength)
      bad(`is ${len} characters long, schema "${rule.name}" needs at least ${rule.minLength}`);
    if (rule.maxLength !== undefined && len > rule.maxLength)
      bad(`is ${len} characters long, schema "${rule.name}" allows at most ${rule.maxLength}`);
    if (rule.regexMatch !== undefined) {
      let re: RegExp | undefined;
      try {
        re = new RegExp(rule.regexMatch);
      } catch {
        re = undefined; // an invalid regexMatch is reported once, on the schema itself
      }
      if (re && !re.test(value)) bad(`does not match regexMatch of schema "${rule.name}"`);
    }
  }
  if (typeof value === "number" || typeof value === "bigint") {
    // number and bigint compare exactly with each other, so 2^53 + 1 is above a bound of 2^53.
    if (rule.minValue !== undefined && value < rule.minValue)
      bad(`${value} is below minValue ${rule.minValue} of schema "${rule.name}"`);
    if (rule.maxValue !== undefined && value > rule.maxValue)
      bad(`${value} is above maxValue ${rule.maxValue} of schema "${rule.name}"`);
    const places = typeof value === "bigint" ? 0 : decimalPlaces(value);
    if (rule.minPrecision !== undefined && places < rule.minPrecision)
      bad(
        `${value} has ${places} decimal places, schema "${rule.name}" needs ${rule.minPrecision}`,
      );
    if (rule.maxPrecision !== undefined && places > rule.maxPrecision)
      bad(
        `${value} has ${places} decimal places, schema "${rule.name}" allows ${rule.maxPrecision}`,
      );
  }
  if (rule.options !== undefined && !rule.options.includes(String(value)))
    bad(`${show(value)} is not one of the options of schema "${rule.name}"`);
  return out;
}

/**
 * Returns every way value breaks rule: first its type (dataType, and array-ness when
 * multiselect is set), then the rule's constraints. An empty list means the value is acceptable.
 * Emptiness (allowEmpty) is not judged: the spec's wording of allowEmpty reads inverted
 * (digest 16.14), so neither reading is enforced.
 */
export function checkParameterValue(value: unknown, rule: SchemaRule): ValueFinding[] {
  const { array, element } = elementType(rule.dataType);
  const wantArray = array || rule.multiselect === true;
  const typeName = wantArray ? `array of ${element}` : element;
  if (wantArray) {
    if (!Array.isArray(value) || !value.every((v) => scalarMatches(v, element)))
      return [
        {
          rule: "description.parameter-value-type",
          message: `value ${show(value)} is not an ${typeName} (schema "${rule.name}")`,
        },
      ];
    return value.flatMap((v, i) => checkScalarRules(v, rule, `element ${i}: `));
  }
  if (!scalarMatches(value, element))
    return [
      {
        rule: "description.parameter-value-type",
        message: `value ${show(value)} is not a ${typeName} (schema "${rule.name}")`,
      },
    ];
  return checkScalarRules(value, rule, "value ");
}
