import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Node,
  parseDocument,
  type ScalarTag,
  stringify,
} from "yaml";
import { type Problem, pointer, problem } from "../problem.js";
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

/** The YAML 1.2 core schema's tags; every other tag has no JSON equivalent. */
const CORE = "tag:yaml.org,2002:";

/** Which JSON kinds each core tag may produce ("!" is the non-specific tag: plain str/map/seq). */
const CORE_TAG_KINDS: Readonly<Record<string, readonly string[]>> = {
  "!": ["string", "map", "seq"],
  [`${CORE}map`]: ["map"],
  [`${CORE}seq`]: ["seq"],
  [`${CORE}str`]: ["string"],
  [`${CORE}int`]: ["integer"],
  [`${CORE}float`]: ["integer", "float"],
  [`${CORE}bool`]: ["boolean"],
  [`${CORE}null`]: ["null"],
};

/**
 * EXPLICIT_FLOAT resolves `!!float <text>` the way YAML 1.2.2 section 10.3.2 reads it: the core
 * float pattern includes integer spellings ("!!float 1" is 1.0), which the yaml library's
 * implicit-resolution tests leave out, so without this tag such documents fail as "Unresolved
 * tag". It is never used for untagged scalars (default: false).
 */
const EXPLICIT_FLOAT: ScalarTag = {
  tag: `${CORE}float`,
  default: false,
  identify: () => false,
  // A text that is no float stays a string; nodeProblems then reports it at its pointer.
  resolve(text) {
    if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) {
      return Number.parseFloat(text);
    }
    if (/^[-+]?\.(?:inf|Inf|INF)$/.test(text)) {
      return text.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    }
    if (/^\.(?:nan|NaN|NAN)$/.test(text)) return Number.NaN;
    return text;
  },
};

/**
 * parseYaml reads one YAML 1.2 document (core schema, so only JSON-compatible scalars) into a
 * JsonValue. Integers are read as bigint and narrowed to number when exact, so a uint64 or a
 * large parameter value survives. Never throws: syntax errors, duplicate keys, several
 * documents and alias bombs come back as wire.syntax problems; nodes with no JSON equivalent
 * (!!binary, !!timestamp, !!set, !!omap, !!pairs, local tags, collection keys) and tagged
 * values that do not fit their tag come back as wire.yaml-type at their pointer.
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
      customTags: [EXPLICIT_FLOAT],
    });
    // "Unresolved tag" is reported by nodeProblems below, with the node's pointer.
    const issues = [...doc.errors, ...doc.warnings]
      .map((e) => e.message.split("\n")[0] ?? "")
      .filter((m) => !m.startsWith("Unresolved tag"));
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
    const typeProblems = nodeProblems(doc.contents);
    if (typeProblems.length > 0) return { problems: typeProblems };
    const raw: unknown = doc.toJS({ maxAliasCount: MAX_ALIASES });
    const treeProblems = checkTree(raw);
    if (treeProblems.length > 0) return { problems: treeProblems };
    const converted: Problem[] = [];
    const value = toJsonValue(raw, "", converted);
    return converted.length > 0 ? { problems: converted } : { value, problems: [] };
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

/** kindOfScalar names what a resolved scalar is, in CORE_TAG_KINDS' terms. */
function kindOfScalar(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return "integer";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  if (typeof value === "string" || typeof value === "boolean") return typeof value;
  return value instanceof Uint8Array ? "binary" : value instanceof Date ? "timestamp" : "object";
}

/** shortTag writes the library's full tag names the way documents spell them (!!binary). */
function shortTag(tag: string): string {
  return tag.startsWith(CORE) ? `!!${tag.slice(CORE.length)}` : tag;
}

/**
 * nodeProblems walks the parsed YAML nodes (iteratively; aliases are not followed, their
 * anchors are checked where they stand) and reports every node the JSON data model cannot
 * hold. Without it the library's toJS would turn !!binary into a byte array that reads as
 * {"0":104,...}, a timestamp into a Date that reads as {}, and !!set / !!omap into Set / Map
 * objects that read as {} -- wrong values with no problem at all.
 */
function nodeProblems(root: unknown): Problem[] {
  const problems: Problem[] = [];
  const stack: Array<{ node: unknown; at: string }> = [{ node: root, at: "" }];
  while (stack.length > 0) {
    const top = stack.pop();
    if (top === undefined) break;
    const { node, at } = top;
    if (node === null || node === undefined || isAlias(node)) continue;
    const tag = (node as Node).tag;
    const kind = isMap(node)
      ? "map"
      : isSeq(node)
        ? "seq"
        : isScalar(node)
          ? kindOfScalar(node.value)
          : "unknown";
    const allowed = tag === undefined ? undefined : CORE_TAG_KINDS[tag];
    if (tag !== undefined && allowed === undefined) {
      problems.push(
        problem(
          "wire.yaml-type",
          at,
          `YAML tag ${shortTag(tag)} has no JSON equivalent (only the YAML 1.2 core schema is read)`,
        ),
      );
      continue;
    }
    if (allowed !== undefined && !allowed.includes(kind)) {
      const name = shortTag(tag ?? "");
      const message = isScalar(node)
        ? `${name} ${JSON.stringify(String(node.source ?? node.value))} is not a valid ${name} value`
        : `${name} cannot tag a ${kind === "map" ? "mapping" : "sequence"}`;
      problems.push(problem("wire.yaml-type", at, message));
      continue;
    }
    if (!["map", "seq", "string", "integer", "float", "boolean", "null"].includes(kind)) {
      problems.push(problem("wire.yaml-type", at, `YAML ${kind} value has no JSON equivalent`));
      continue;
    }
    // Children are pushed last-first so problems come out in document order.
    const next: Array<{ node: unknown; at: string }> = [];
    if (isSeq(node)) {
      node.items.forEach((item, i) => {
        next.push({ node: item, at: at + pointer(i) });
      });
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = pair.key;
        if (isMap(key) || isSeq(key)) {
          problems.push(
            problem("wire.yaml-type", at, "a mapping key is a collection; JSON keys are strings"),
          );
          continue;
        }
        // Keys with no JSON form (a !!binary key) are named by their source text.
        const name = isScalar(key)
          ? typeof key.value === "object" && key.value !== null
            ? String(key.source)
            : String(key.value ?? "")
          : isAlias(key)
            ? key.source
            : "";
        const keyAt = at + pointer(name);
        // The key is checked like a value (its tag, e.g. !!binary), then its value.
        next.push({ node: key, at: keyAt }, { node: pair.value, at: keyAt });
      }
    }
    for (let i = next.length - 1; i >= 0; i--) {
      const item = next[i];
      if (item) stack.push(item);
    }
  }
  return problems;
}

/**
 * toJsonValue narrows the YAML library's output to JsonValue (bigints made exact numbers). It
 * refuses, at its pointer, anything that is not a plain object, array or JSON scalar, so a
 * library type nodeProblems missed can never pass as an empty object.
 */
function toJsonValue(value: unknown, at: string, problems: Problem[]): JsonValue {
  if (typeof value === "bigint") return normalizeInteger(value);
  if (Array.isArray(value)) return value.map((v, i) => toJsonValue(v, at + pointer(i), problems));
  if (isJsonObject(value)) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      problems.push(problem("wire.yaml-type", at, "YAML value has no JSON equivalent"));
      return null;
    }
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      setOwn(out, k, toJsonValue(v, at + pointer(k), problems));
    }
    return out;
  }
  if (value === undefined || value === null) return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value;
  }
  problems.push(problem("wire.yaml-type", at, `YAML ${typeof value} has no JSON equivalent`));
  return null;
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
