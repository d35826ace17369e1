import { isNode, LineCounter, parseAllDocuments } from "yaml";
import { type Problem, problem } from "../../problem.js";
import { normalizeInteger } from "../../wire/json-value.js";

/**
 * Integers are read as bigint (a double would silently turn 9007199254740993 into ...992) and
 * narrowed back to number wherever that is exact, so only integers beyond 2^53 stay bigint.
 */
function exactIntegers(v: unknown): unknown {
  if (typeof v === "bigint") return normalizeInteger(v);
  if (Array.isArray(v)) return v.map(exactIntegers);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = exactIntegers(x);
    return out;
  }
  return v;
}

/**
 * YAML front end shared by the description validator and anything else reading a Margo YAML
 * document: never throws, turns syntax errors into one problem with line and column, and can
 * later map a JSON pointer back to a line so semantic problems point into the file too.
 */
export interface ParsedYaml {
  /** The document as plain JSON-like data; undefined when the text could not be parsed. */
  value?: unknown;
  problems: Problem[];
  /** Line (1-based) of the node at a JSON pointer, when the pointer resolves. */
  lineOf(pointer: string): number | undefined;
}

/** Limits alias expansion so a "billion laughs" document is a problem, not an outage. */
const MAX_ALIAS_COUNT = 100;

function unescapeSegment(s: string): string {
  return s.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** Parses text that must hold exactly one YAML document; rule ids are prefixed with area. */
export function parseSingleYaml(text: string, area: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const noLines: ParsedYaml["lineOf"] = () => undefined;
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, {
      lineCounter,
      prettyErrors: false,
      uniqueKeys: true,
      intAsBigInt: true,
    });
  } catch (err) {
    return {
      problems: [problem(`${area}.yaml-syntax`, "", `not parseable: ${(err as Error).message}`)],
      lineOf: noLines,
    };
  }
  const list = Array.isArray(docs) ? docs : [];
  const errors = list.flatMap((d) => d.errors);
  if (errors.length > 0) {
    const shown = errors.slice(0, 3).map((e) => {
      const at = lineCounter.linePos(e.pos[0]);
      return `line ${at.line}, column ${at.col}: ${e.message.split("\n")[0]} (${e.code})`;
    });
    const more = errors.length > 3 ? `; and ${errors.length - 3} more` : "";
    return {
      problems: [problem(`${area}.yaml-syntax`, "", `invalid YAML: ${shown.join("; ")}${more}`)],
      lineOf: noLines,
    };
  }
  if (list.length > 1) {
    const second = list[1];
    const line = second?.range ? lineCounter.linePos(second.range[0]).line : undefined;
    return {
      problems: [
        problem(
          `${area}.multi-document`,
          "",
          `expected one YAML document, found ${list.length}${line ? ` (the second starts at line ${line})` : ""}`,
        ),
      ],
      lineOf: noLines,
    };
  }
  const doc = list[0];
  if (!doc) return { value: null, problems: [], lineOf: noLines };
  let value: unknown;
  try {
    value = exactIntegers(doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }));
  } catch (err) {
    return {
      problems: [problem(`${area}.yaml-syntax`, "", `not usable: ${(err as Error).message}`)],
      lineOf: noLines,
    };
  }
  const lineOf = (ptr: string): number | undefined => {
    const path = ptr === "" ? [] : ptr.slice(1).split("/").map(unescapeSegment);
    // Array indices are looked up as numbers, mapping keys as strings.
    let node: unknown = doc.contents;
    for (let i = path.length; i >= 0; i--) {
      try {
        node = doc.getIn(
          path.slice(0, i).map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
          true,
        );
      } catch {
        node = undefined;
      }
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { value, problems: [], lineOf };
}
