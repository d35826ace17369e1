import { type Problem, pointer, problem, ValidationError, warning } from "../problem.js";
import type { EnumMap } from "./enum-map.js";
import { isJsonObject, type JsonObject, type JsonValue, setOwn } from "./json-value.js";

/** EXTENSION_NAME is the spec's patternProperties key for vendor extensions (digest 12). */
export const EXTENSION_NAME = /^x-[a-z][a-z0-9-]*-extensions$/;

/** UINT64_MAX is 2^64-1, the largest manifestVersion / sizeBytes. */
export const UINT64_MAX = (1n << 64n) - 1n;

/** Shape tells Reader.members which members an object may have. */
export interface Shape {
  /** Members the schema defines. */
  readonly known: readonly string[];
  /** true when the schema says additionalProperties: false (unknown members are errors). */
  readonly closed: boolean;
  /** true when the schema has the x-<name>-extensions patternProperties. */
  readonly extensions?: boolean;
  /** Pre-rc.3 member names with a hint at their rc.3 replacement. */
  readonly legacy?: Readonly<Record<string, string>>;
}

/** Extensions is the generated form of x-<name>-extensions members: Struct per full name. */
// biome-ignore lint/suspicious/noExplicitAny: ts-proto types google.protobuf.Struct as any-valued records.
export type Extensions = { [key: string]: { [key: string]: any } };

/**
 * Reader walks a parsed document and collects every problem with its JSON pointer instead of
 * stopping at the first, as the common problem contract requires. Each accessor returns
 * `undefined` when the member is absent or wrong, after recording why.
 */
export class Reader {
  readonly problems: Problem[] = [];

  /** error records a problem that rejects the document. */
  error(rule: string, at: string, message: string): void {
    this.problems.push(problem(rule, at, message));
  }

  /** warn records a problem that is reported but does not reject the document. */
  warn(rule: string, at: string, message: string): void {
    this.problems.push(warning(rule, at, message));
  }

  /** object checks that a value is a JSON object. */
  object(value: unknown, at: string, what: string): JsonObject | undefined {
    if (isJsonObject(value)) return value;
    this.error("wire.type", at, `${what} must be an object, got ${kindOf(value)}`);
    return undefined;
  }

  /**
   * members reports members the shape does not know and returns the extension members (as
   * deep copies) when the shape allows them, so codecs keep unknown vendor extensions.
   */
  members(obj: JsonObject, at: string, shape: Shape): Extensions {
    const extensions: Extensions = {};
    for (const key of Object.keys(obj)) {
      if (shape.known.includes(key)) continue;
      const here = at + pointer(key);
      const legacy = shape.legacy?.[key];
      if (legacy !== undefined) {
        const message = `"${key}" is a pre-rc.3 member: ${legacy}`;
        if (shape.closed) this.error("wire.legacy-member", here, message);
        else this.warn("wire.legacy-member", here, message);
      } else if (shape.extensions && EXTENSION_NAME.test(key)) {
        const value = obj[key];
        if (isJsonObject(value)) setOwn(extensions, key, copyJson(value) as JsonObject);
        else
          this.error(
            "wire.extension-not-object",
            here,
            `${key} must be an object, got ${kindOf(value)}`,
          );
      } else if (shape.closed) {
        this.error("wire.unknown-member", here, `member "${key}" is not allowed here`);
      } else {
        this.warn(
          "wire.ignored-member",
          here,
          `member "${key}" is not part of the rc.3 schema; dropped`,
        );
      }
    }
    return extensions;
  }

  /** present returns a member's value, reporting wire.required when it is missing and required. */
  present(obj: JsonObject, key: string, at: string, required: boolean): JsonValue | undefined {
    if (Object.hasOwn(obj, key)) return obj[key];
    if (required)
      this.error("wire.required", at + pointer(key), `required member "${key}" is missing`);
    return undefined;
  }

  /** string reads a string member, checking the schema's pattern or enum when given. */
  string(
    obj: JsonObject,
    key: string,
    at: string,
    opts: { required?: boolean; pattern?: RegExp; enum?: readonly string[] } = {},
  ): string | undefined {
    const v = this.present(obj, key, at, opts.required ?? false);
    if (v === undefined) return undefined;
    const here = at + pointer(key);
    if (typeof v !== "string") {
      this.error("wire.type", here, `"${key}" must be a string, got ${kindOf(v)}`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(v)) {
      this.error(
        "wire.pattern",
        here,
        `${JSON.stringify(v)} does not match ${opts.pattern.source}`,
      );
      return undefined;
    }
    if (opts.enum && !opts.enum.includes(v)) {
      this.error("wire.enum", here, `${JSON.stringify(v)} is not one of ${opts.enum.join(", ")}`);
      return undefined;
    }
    return v;
  }

  /** boolean reads a boolean member (presence matters: absent is not false). */
  boolean(obj: JsonObject, key: string, at: string, required = false): boolean | undefined {
    const v = this.present(obj, key, at, required);
    if (v === undefined) return undefined;
    if (typeof v === "boolean") return v;
    this.error("wire.type", at + pointer(key), `"${key}" must be a boolean, got ${kindOf(v)}`);
    return undefined;
  }

  /** number reads a JSON number as a double (bigints beyond 2^53 are rounded: the field is double). */
  number(obj: JsonObject, key: string, at: string, required = false): number | undefined {
    const v = this.present(obj, key, at, required);
    if (v === undefined) return undefined;
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    this.error("wire.type", at + pointer(key), `"${key}" must be a number, got ${kindOf(v)}`);
    return undefined;
  }

  /** integer reads a JSON integer within [min, max] (the bounds of the generated field type). */
  integer(
    obj: JsonObject,
    key: string,
    at: string,
    opts: { required?: boolean; min: number; max: number },
  ): number | undefined {
    const v = this.present(obj, key, at, opts.required ?? false);
    if (v === undefined) return undefined;
    const here = at + pointer(key);
    if (typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v))) {
      const n = Number(v);
      if (typeof v === "number" && n >= opts.min && n <= opts.max) return n;
      this.error(
        "wire.type",
        here,
        `"${key}" must be an integer in [${opts.min}, ${opts.max}], got ${v}`,
      );
      return undefined;
    }
    this.error("wire.type", here, `"${key}" must be an integer, got ${kindOf(v)}`);
    return undefined;
  }

  /**
   * uint64 reads an unsigned 64-bit integer exactly. Out-of-range values are reported with
   * wire.uint64-range and never clamped: a clamped manifestVersion would defeat rollback checks.
   */
  uint64(
    obj: JsonObject,
    key: string,
    at: string,
    opts: { required?: boolean; min: bigint },
  ): bigint | undefined {
    const v = this.present(obj, key, at, opts.required ?? false);
    if (v === undefined) return undefined;
    const here = at + pointer(key);
    if (typeof v === "number" && !Number.isSafeInteger(v)) {
      const why = Number.isInteger(v)
        ? "is not exact (write it as a plain integer)"
        : "is not an integer";
      this.error(
        Number.isInteger(v) ? "wire.uint64-range" : "wire.type",
        here,
        `"${key}" ${v} ${why}`,
      );
      return undefined;
    }
    if (typeof v !== "number" && typeof v !== "bigint") {
      this.error("wire.type", here, `"${key}" must be an unsigned integer, got ${kindOf(v)}`);
      return undefined;
    }
    const n = BigInt(v);
    if (n < opts.min || n > UINT64_MAX) {
      this.error("wire.uint64-range", here, `"${key}" ${n} is outside [${opts.min}, 2^64-1]`);
      return undefined;
    }
    return n;
  }

  /** enumValue reads a wire string and maps it to the generated enum value. */
  enumValue<E extends number>(
    obj: JsonObject,
    key: string,
    at: string,
    map: EnumMap<E>,
    required = false,
  ): E | undefined {
    const v = this.string(obj, key, at, { required });
    return v === undefined ? undefined : this.enumItem(v, at + pointer(key), map);
  }

  /** enumItem maps one string already read (e.g. an array item). */
  enumItem<E extends number>(v: unknown, at: string, map: EnumMap<E>): E | undefined {
    if (typeof v !== "string") {
      this.error("wire.type", at, `must be a string, got ${kindOf(v)}`);
      return undefined;
    }
    const e = map.fromWire(v);
    if (e === undefined) {
      this.error(
        "wire.enum",
        at,
        `${JSON.stringify(v)} is not one of ${map.wireValues.join(", ")}`,
      );
    }
    return e;
  }

  /** array reads an array member; items are checked by the caller with their own pointers. */
  array(
    obj: JsonObject,
    key: string,
    at: string,
    opts: { required?: boolean; minItems?: number } = {},
  ): JsonValue[] | undefined {
    const v = this.present(obj, key, at, opts.required ?? false);
    if (v === undefined) return undefined;
    const here = at + pointer(key);
    if (!Array.isArray(v)) {
      this.error("wire.type", here, `"${key}" must be an array, got ${kindOf(v)}`);
      return undefined;
    }
    if (opts.minItems !== undefined && v.length < opts.minItems) {
      this.error(
        "wire.min-items",
        here,
        `"${key}" needs at least ${opts.minItems} item(s), has ${v.length}`,
      );
    }
    return v;
  }

  /** strings reads an array of strings (every bad item reported). */
  strings(obj: JsonObject, key: string, at: string, required = false): string[] | undefined {
    const items = this.array(obj, key, at, { required });
    if (items === undefined) return undefined;
    const out: string[] = [];
    items.forEach((item, i) => {
      if (typeof item === "string") out.push(item);
      else this.error("wire.type", at + pointer(key, i), `must be a string, got ${kindOf(item)}`);
    });
    return out;
  }
}

/** kindOf names a value's JSON type for problem messages. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "bigint") return "a number";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/**
 * copyJson deep-copies a JSON tree so decoded values never alias the parser's objects. It
 * recurses: parsed input is already bounded by MAX_DEPTH.
 */
export function copyJson(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(copyJson);
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, copyJson(v));
    return out;
  }
  return value;
}

/**
 * flattenExtensions writes extension members into a wire object being encoded. A key that does
 * not match the spec's pattern would produce a document no peer accepts (or overwrite a core
 * member), so it is refused rather than written.
 */
export function flattenExtensions(
  target: Record<string, unknown>,
  extensions: Record<string, unknown> | undefined,
  at: string,
): void {
  if (!extensions) return;
  const bad: Problem[] = [];
  for (const key of Object.keys(extensions).sort()) {
    const value = extensions[key];
    if (value === undefined) continue;
    if (!EXTENSION_NAME.test(key)) {
      bad.push(
        problem(
          "wire.unknown-member",
          at + pointer(key),
          `extension key "${key}" does not match ${EXTENSION_NAME.source}`,
        ),
      );
    } else setOwn(target, key, value);
  }
  if (bad.length > 0) throw new ValidationError("cannot encode extensions", bad);
}
