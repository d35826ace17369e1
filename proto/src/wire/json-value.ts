import { parse as parseLossless } from "lossless-json";
import { type Problem, pointer, problem } from "../problem.js";

/**
 * JsonValue is the in-memory form of any JSON or YAML document the codecs read. Integers beyond
 * 2^53 are `bigint` so that uint64 fields (manifestVersion, sizeBytes, ...) survive exactly;
 * every other number is a `number`.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;

/** JsonObject is a JSON object; keys may include "__proto__", so it is always built with setOwn. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * MAX_DEPTH bounds nesting. Margo documents nest fewer than 15 levels; the bound keeps hostile
 * input (100k open brackets) from exhausting the stack of the recursive parsers.
 */
export const MAX_DEPTH = 128;

/** Integers with more digits than this are never made exact: no Margo field needs them. */
const MAX_EXACT_DIGITS = 40;

/** Parsed is a decoded document, or the problems why it could not be read at all. */
export interface Parsed {
  readonly value?: JsonValue;
  readonly problems: Problem[];
}

/**
 * setOwn stores a member as an own enumerable property. Plain assignment of "__proto__" would
 * change the prototype instead of storing the member, silently dropping vendor data.
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

/** isJsonObject tells a JSON object from arrays and scalars. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * parseExactNumber turns JSON number text into a number, or a bigint when the text denotes an
 * integer a double cannot hold exactly ("18446744073709551615", also "1.8446744073709551615e19").
 */
export function parseExactNumber(text: string): number | bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  const asNumber = Number(text);
  if (!m || Number.isSafeInteger(asNumber)) return asNumber;
  const [, sign = "", intPart = "", frac = "", expText = "0"] = m;
  const exp = Number(expText);
  const digits = (intPart + frac).replace(/^0+/, "") || "0";
  const fracDigits = frac.length - exp;
  // Not an integer, or absurdly long: leave it to IEEE (may become Infinity, flagged later).
  if (Math.abs(exp) > MAX_EXACT_DIGITS || digits.length - fracDigits > MAX_EXACT_DIGITS) {
    return asNumber;
  }
  if (fracDigits >= digits.length) return asNumber;
  if (fracDigits > 0) {
    const dropped = digits.slice(digits.length - fracDigits);
    if (!/^0*$/.test(dropped)) return asNumber;
    return BigInt(sign + (digits.slice(0, digits.length - fracDigits) || "0"));
  }
  return BigInt(sign + digits + "0".repeat(-fracDigits));
}

/**
 * normalizeInteger keeps an integer as a number while it is exact and as a bigint beyond, so
 * equal values from JSON and YAML compare equal whatever parser produced them.
 */
export function normalizeInteger(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/**
 * nestingDepth measures bracket nesting of JSON text without recursion, skipping strings, so
 * the recursive parser is only run on input it can survive.
 */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * textOf decodes wire bytes as strict UTF-8 (RFC 8259 8.1); invalid sequences are a problem,
 * not U+FFFD, because digests and signatures are over the original bytes.
 */
export function textOf(input: Uint8Array | string): { text?: string; problems: Problem[] } {
  if (typeof input === "string") return { text: input, problems: [] };
  try {
    return {
      text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(input),
      problems: [],
    };
  } catch {
    return { problems: [problem("wire.syntax", "", "body is not valid UTF-8")] };
  }
}

/**
 * checkTree walks a parsed tree (iteratively) for what the parsers accept but JSON cannot carry:
 * non-finite numbers and excessive depth, reporting each with its pointer.
 */
export function checkTree(root: unknown): Problem[] {
  const problems: Problem[] = [];
  const stack: Array<{ v: unknown; path: string; depth: number }> = [
    { v: root, path: "", depth: 0 },
  ];
  while (stack.length > 0) {
    const top = stack.pop();
    if (top === undefined) break;
    const { v, path, depth } = top;
    if (typeof v === "number" && !Number.isFinite(v)) {
      problems.push(
        problem("wire.number-range", path, "number is not finite (JSON has no NaN/Infinity)"),
      );
    } else if (typeof v === "object" && v !== null) {
      if (depth >= MAX_DEPTH) {
        problems.push(problem("wire.depth", path, `nesting deeper than ${MAX_DEPTH} levels`));
        continue;
      }
      const entries: Array<[string, unknown]> = Array.isArray(v)
        ? v.map((x, i) => [String(i), x])
        : Object.entries(v);
      for (const [k, x] of entries) stack.push({ v: x, path: path + pointer(k), depth: depth + 1 });
    }
  }
  return problems;
}

/**
 * parseJson reads JSON text (or UTF-8 bytes) without losing integer precision. It never throws:
 * syntax errors, duplicate members with different values, bad UTF-8 and excessive nesting all
 * come back as problems with rule ids.
 */
export function parseJson(input: Uint8Array | string): Parsed {
  const { text, problems } = textOf(input);
  if (text === undefined) return { problems };
  if (nestingDepth(text) > MAX_DEPTH) {
    return { problems: [problem("wire.depth", "", `nesting deeper than ${MAX_DEPTH} levels`)] };
  }
  let value: unknown;
  try {
    value = parseLossless(text, null, { parseNumber: parseExactNumber });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { problems: [problem("wire.syntax", "", `not JSON: ${message}`)] };
  }
  const treeProblems = checkTree(value);
  if (treeProblems.length > 0) return { problems: treeProblems };
  return { value: value as JsonValue, problems: [] };
}
