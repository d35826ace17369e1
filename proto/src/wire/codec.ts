import { fullFormats } from "ajv-formats/dist/formats.js";
import { hasErrors, type Problem, pointer, problem, ValidationError } from "../problem.js";
import { canonicalJsonBytes } from "./jcs.js";
import {
  checkTree,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type Parsed,
  parseJson,
  setOwn,
} from "./json-value.js";
import { kindOf, Reader } from "./reader.js";
import { parseYaml, stringifyYaml } from "./yaml-text.js";

/**
 * Decoded is what every decodeX returns: the value only when no error-severity problem was
 * found (so a caller cannot act on a half-valid document), and always all problems.
 */
export interface Decoded<T> {
  readonly value?: T;
  readonly problems: Problem[];
}

/** ReadFn maps a parsed tree onto a generated type, reporting problems on the reader. */
export type ReadFn<T> = (tree: JsonValue, r: Reader) => T | undefined;

function decodeParsed<T>(parsed: Parsed, read: ReadFn<T>): Decoded<T> {
  if (parsed.value === undefined) return { problems: parsed.problems };
  const r = new Reader();
  const value = read(parsed.value, r);
  const problems = [...parsed.problems, ...r.problems];
  return value === undefined || hasErrors(problems) ? { problems } : { value, problems };
}

function internal(e: unknown): Decoded<never> {
  const message = e instanceof Error ? e.message : String(e);
  return { problems: [problem("wire.internal", "", `decoder failed: ${message}`)] };
}

/** decodeJson parses JSON bytes or text and maps them; it never throws. */
export function decodeJson<T>(input: Uint8Array | string, read: ReadFn<T>): Decoded<T> {
  try {
    return decodeParsed(parseJson(input), read);
  } catch (e) {
    return internal(e);
  }
}

/** decodeYamlWith parses one YAML document and maps it; it never throws. */
export function decodeYamlWith<T>(input: Uint8Array | string, read: ReadFn<T>): Decoded<T> {
  try {
    return decodeParsed(parseYaml(input), read);
  } catch (e) {
    return internal(e);
  }
}

/**
 * checked runs the decoder's own rules over a tree an encoder built, so an encoder can never
 * emit a document its decoder (or a peer) would reject; it throws ValidationError listing
 * every problem instead.
 */
function checked<T>(what: string, built: JsonValue, read: ReadFn<T>): JsonValue {
  const tree = prune(built);
  const problems = checkTree(tree);
  const r = new Reader();
  read(tree, r);
  problems.push(...r.problems);
  if (hasErrors(problems)) throw new ValidationError(`cannot encode ${what}`, problems);
  return tree;
}

/**
 * prune drops members whose value is undefined, so writers can list optional fields plainly
 * (`deviceId: m.deviceId`) and an absent field is never written as null.
 */
export function prune(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map((v) => prune(v === undefined ? null : v));
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) setOwn(out, k, prune(v));
    return out;
  }
  return value;
}

/** encodeJson writes a tree as RFC 8785 canonical UTF-8 after validating it. */
export function encodeJson<T>(what: string, tree: JsonValue, read: ReadFn<T>): Uint8Array {
  return canonicalJsonBytes(checked(what, tree, read));
}

/** encodeYaml writes a tree as deterministic YAML (UTF-8) after validating it. */
export function encodeYaml<T>(what: string, tree: JsonValue, read: ReadFn<T>): Uint8Array {
  return new TextEncoder().encode(stringifyYaml(checked(what, tree, read)));
}

/**
 * toJsonTree copies a model value typed `any` (google.protobuf.Value / Struct contents) into a
 * JsonValue, turning anything JSON cannot carry (undefined, functions, NaN, class instances)
 * into ValidationError problems rather than silently writing something else.
 */
export function toJsonTree(value: unknown, at: string, problems: Problem[]): JsonValue {
  if (
    value === null ||
    typeof value === "string" ||
    typeof value === "boolean" ||
    typeof value === "bigint"
  ) {
    return value;
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value))
      problems.push(problem("wire.number-range", at, `${value} is not a JSON number`));
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => toJsonTree(v, at + pointer(i), problems));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== undefined) setOwn(out, k, toJsonTree(v, at + pointer(k), problems));
    }
    return out;
  }
  problems.push(problem("wire.type", at, `${kindOf(value)} cannot be written as JSON`));
  return null;
}

/** mustTree is toJsonTree for encoders: it throws ValidationError on anything non-JSON. */
export function mustTree(what: string, value: unknown, at: string): JsonValue {
  const problems: Problem[] = [];
  const tree = toJsonTree(value, at, problems);
  if (problems.length > 0) throw new ValidationError(`cannot encode ${what}`, problems);
  return tree;
}

/** extensionTree converts a generated extensions map into JSON objects keyed by member name. */
export function extensionTree(
  what: string,
  extensions: Record<string, unknown> | undefined,
  at: string,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(extensions ?? {})) {
    if (v !== undefined) setOwn(out, k, mustTree(what, v, at + pointer(k)));
  }
  return out;
}

/** isUriReference applies the same RFC 3986 check ajv-formats uses, so tests and codec agree. */
export function isUriReference(text: string): boolean {
  const f = fullFormats["uri-reference"];
  return f instanceof RegExp ? f.test(text) : true;
}

/** isUri checks an absolute URI the way ajv-formats' "uri" format does. */
export function isUri(text: string): boolean {
  const f = fullFormats.uri;
  return typeof f === "function" ? (f as (s: string) => boolean)(text) : true;
}
