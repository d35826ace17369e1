import { parseDocument, stringify } from "yaml";
import { problem } from "../problem.js";
import {
  checkTree,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  normalizeInteger,
  type Parsed,
  setOwn,
  textOf,
} from "./json-value.js";

/** Aliases are legal YAML but a known amplification attack ("billion laughs"); few are needed. */
const MAX_ALIASES = 50;

/** A broken file can yield one error per line; the first few locate the damage. */
const MAX_SYNTAX_PROBLEMS = 10;

/**
 * parseYaml reads one YAML 1.2 document (core schema, so only JSON-compatible scalars) into a
 * JsonValue. Integers are read as bigint and narrowed to number when exact, so a uint64 or a
 * large parameter value survives. Never throws: syntax errors, duplicate keys, unknown tags,
 * several documents and alias bombs come back as wire.syntax problems.
 */
export function parseYaml(input: Uint8Array | string): Parsed {
  const { text, problems } = textOf(input);
  if (text === undefined) return { problems };
  if (yamlNestingBound(text) > MAX_SCAN_DEPTH) {
    return {
      problems: [problem("wire.depth", "", `YAML nests more than ${MAX_SCAN_DEPTH} levels`)],
    };
  }
  try {
    const doc = parseDocument(text, {
      version: "1.2",
      schema: "core",
      intAsBigInt: true,
      uniqueKeys: true,
      prettyErrors: true,
      strict: true,
    });
    const issues = [...doc.errors, ...doc.warnings].map((e) => e.message.split("\n")[0] ?? "");
    if (issues.some((m) => m.includes("call stack"))) {
      return { problems: [problem("wire.depth", "", "YAML nesting too deep to read")] };
    }
    if (issues.length > 0) {
      const shown = issues
        .slice(0, MAX_SYNTAX_PROBLEMS)
        .map((m) => problem("wire.syntax", "", `not YAML: ${m}`));
      if (issues.length > MAX_SYNTAX_PROBLEMS) {
        shown.push(
          problem(
            "wire.syntax",
            "",
            `... and ${issues.length - MAX_SYNTAX_PROBLEMS} more YAML errors`,
          ),
        );
      }
      return { problems: shown };
    }
    const raw: unknown = doc.toJS({ maxAliasCount: MAX_ALIASES });
    const treeProblems = checkTree(raw);
    if (treeProblems.length > 0) return { problems: treeProblems };
    return { value: toJsonValue(raw), problems: [] };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const rule = e instanceof RangeError ? "wire.depth" : "wire.syntax";
    return { problems: [problem(rule, "", `not YAML: ${message.split("\n")[0]}`)] };
  }
}

/**
 * MAX_SCAN_DEPTH bounds what the YAML parser is ever given. Near stack exhaustion V8 can abort
 * the whole process (a fatal "RegExpCompiler allocation failed" was seen with 100k "[" in a
 * test worker), which no try/catch can stop, so hostile nesting is refused before parsing; the
 * exact MAX_DEPTH check runs on the parsed tree.
 */
const MAX_SCAN_DEPTH = 512;

/**
 * yamlNestingBound over-estimates nesting without parsing: the deepest flow bracket nesting
 * outside quotes and comments, or the largest indentation plus leading "- " / "? " indicators
 * on a line (each block level needs one of those).
 */
export function yamlNestingBound(text: string): number {
  let max = 0;
  let flow = 0;
  let block = 0;
  let quote = "";
  let lineStart = true;
  // Last significant character before the current one: a quote opens a quoted scalar only
  // where a scalar can start (so the apostrophe in "it's" does not hide later brackets).
  let prev = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (c === "\n") {
      lineStart = true;
      block = 0;
      if (quote === "") prev = "";
      continue;
    }
    if (quote === '"') {
      if (c === "\\") i++;
      else if (c === '"') quote = "";
      continue;
    }
    if (quote === "'") {
      if (c === "'") quote = "";
      continue;
    }
    if (lineStart) {
      if (c === " ") {
        block++;
        max = Math.max(max, block);
        continue;
      }
      if ((c === "-" || c === "?") && (text[i + 1] === " " || text[i + 1] === "\t")) {
        block += 2;
        max = Math.max(max, block);
        i++;
        continue;
      }
      lineStart = false;
    }
    if (c === " " || c === "\t") continue;
    if ((c === '"' || c === "'") && (prev === "" || SCALAR_START.includes(prev))) quote = c;
    else if (c === "#" && /\s/.test(text[i - 1] ?? " ")) {
      const eol = text.indexOf("\n", i);
      i = (eol < 0 ? text.length : eol) - 1;
      continue;
    } else if (c === "[" || c === "{") {
      flow++;
      max = Math.max(max, flow);
    } else if ((c === "]" || c === "}") && flow > 0) flow--;
    prev = c;
  }
  return max;
}

/** Characters after which a quoted scalar may begin. */
const SCALAR_START = ":-[{,?";

/** toJsonValue narrows the YAML library's output to JsonValue (bigints made exact numbers). */
function toJsonValue(value: unknown): JsonValue {
  if (typeof value === "bigint") return normalizeInteger(value);
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, toJsonValue(v));
    return out;
  }
  if (value === undefined) return null;
  return value as JsonValue;
}

/**
 * stringifyYaml writes a JsonValue as YAML deterministically: key order is the object's
 * insertion order (codecs build objects in the spec's field order), two-space indentation, no
 * line folding, no anchors for repeated objects, strings quoted only when YAML would
 * otherwise read them as another type. The same value always gives the same bytes, which
 * matters because deployment YAML is served and hashed as bytes.
 */
export function stringifyYaml(value: JsonValue): string {
  return stringify(value, {
    version: "1.2",
    indent: 2,
    indentSeq: true,
    lineWidth: 0,
    minContentWidth: 0,
    aliasDuplicateObjects: false,
    defaultStringType: "PLAIN",
    defaultKeyType: "PLAIN",
    doubleQuotedAsJSON: true,
  });
}
