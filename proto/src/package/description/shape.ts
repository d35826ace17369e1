import { type Problem, pointer, problem, warning } from "../../problem.js";

/**
 * A small declarative schema walker. The Application Description's field tables (digest 2.1-2.5)
 * are data, not code: writing them as shapes keeps required/type/pattern/unknown-member checks
 * uniform and lets every problem carry the exact JSON pointer, which a JSON Schema validator's
 * error list would make us re-derive.
 */

/** A string constraint with the rule id reported when it fails. */
export interface StringCheck {
  readonly rule: string;
  readonly test: (s: string) => boolean;
  readonly expected: string;
}

export type Kind =
  | { readonly kind: "string"; readonly check?: StringCheck }
  | { readonly kind: "boolean" }
  | { readonly kind: "number" }
  | { readonly kind: "integer" }
  /** boolean | number | string, or an array of them (parameter values, match values). */
  | { readonly kind: "scalar-or-list" }
  | { readonly kind: "object"; readonly shape: Shape }
  | { readonly kind: "array"; readonly items: Kind }
  | { readonly kind: "map"; readonly values: Kind };

export interface Field {
  readonly type: Kind;
  readonly required?: boolean;
}

export interface Shape {
  readonly name: string;
  readonly fields: Readonly<Record<string, Field>>;
  /** Whether x-<name>-extensions members are defined here (digest 12). */
  readonly extensions?: boolean;
}

/** The property name of a specification extension (digest 12). */
export const EXTENSION_KEY = /^x-[a-z][a-z0-9-]*-extensions$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  if (typeof v === "bigint") return "an integer";
  return `a ${typeof v}`;
}

function isScalar(v: unknown): boolean {
  return (
    typeof v === "string" ||
    typeof v === "boolean" ||
    typeof v === "bigint" ||
    (typeof v === "number" && Number.isFinite(v))
  );
}

/** Walks value against kind, appending every problem found; never throws. */
export function checkKind(
  value: unknown,
  kind: Kind,
  path: ReadonlyArray<string | number>,
  out: Problem[],
): void {
  const at = pointer(...path);
  const wrong = (expected: string): void => {
    out.push(problem("description.type", at, `expected ${expected}, found ${typeName(value)}`));
  };
  switch (kind.kind) {
    case "string":
      if (typeof value !== "string") {
        wrong("a string");
        return;
      }
      if (kind.check && !kind.check.test(value))
        out.push(
          problem(kind.check.rule, at, `${JSON.stringify(value)} must be ${kind.check.expected}`),
        );
      return;
    case "boolean":
      if (typeof value !== "boolean") wrong("a boolean (true or false)");
      return;
    case "number":
      if (typeof value !== "bigint" && (typeof value !== "number" || !Number.isFinite(value)))
        wrong("a number");
      return;
    case "integer":
      if (typeof value !== "bigint" && (typeof value !== "number" || !Number.isInteger(value)))
        wrong("an integer");
      return;
    case "scalar-or-list":
      if (isScalar(value)) return;
      if (Array.isArray(value) && value.every(isScalar)) return;
      wrong("a string, number or boolean (or a list of them)");
      return;
    case "array":
      if (!Array.isArray(value)) {
        wrong("a list");
        return;
      }
      value.forEach((item, i) => {
        checkKind(item, kind.items, [...path, i], out);
      });
      return;
    case "map":
      if (!isPlainObject(value)) {
        wrong("a mapping");
        return;
      }
      for (const [k, v] of Object.entries(value)) checkKind(v, kind.values, [...path, k], out);
      return;
    case "object":
      if (!isPlainObject(value)) {
        wrong("a mapping");
        return;
      }
      checkShape(value, kind.shape, path, out);
      return;
  }
}

function checkShape(
  obj: Record<string, unknown>,
  shape: Shape,
  path: ReadonlyArray<string | number>,
  out: Problem[],
): void {
  for (const [name, field] of Object.entries(shape.fields)) {
    if (field.required && !(name in obj))
      out.push(
        problem(
          "description.required",
          pointer(...path, name),
          `${shape.name}.${name} is required`,
        ),
      );
  }
  for (const [key, value] of Object.entries(obj)) {
    const field = shape.fields[key];
    if (field) {
      checkKind(value, field.type, [...path, key], out);
      continue;
    }
    if (shape.extensions && EXTENSION_KEY.test(key)) {
      if (!isPlainObject(value))
        out.push(
          problem(
            "description.extension-not-object",
            pointer(...path, key),
            `extension ${key} must be a mapping, found ${typeName(value)}`,
          ),
        );
      continue;
    }
    out.push(
      warning(
        "description.unknown-member",
        pointer(...path, key),
        shape.extensions && key.startsWith("x-")
          ? `${key} is not a valid extension name (x-<name>-extensions, name [a-z][a-z0-9-]*); ignored`
          : `${shape.name} has no member ${key} in Margo rc.3; ignored`,
      ),
    );
  }
}
