import type { ApplicationDescription } from "../../gen/margo/model/v1/application_description.js";
import { hasErrors, type Problem, pointer, problem, warning } from "../../problem.js";
import { APPLICATION_DESCRIPTION_SHAPE } from "./description-shape.js";
import { toModel } from "./model.js";
import { parseSingleYaml } from "./parse.js";
import { checkSemantics } from "./semantic.js";
import { checkKind, isPlainObject } from "./shape.js";
import type { ApplicationDescriptionDoc } from "./types.js";

/**
 * Integers beyond 2^53 stay exact in doc but the model's google.protobuf.Value rounds them
 * (see toModelValue); a warning at each one says so instead of letting the model drift quietly.
 */
function precisionWarnings(v: unknown, at: (string | number)[]): Problem[] {
  if (typeof v === "bigint")
    return [
      warning(
        "description.integer-precision",
        pointer(...at),
        `integer ${v} is kept exact in the document but the model (google.protobuf.Value, a double) holds ${Number(v)}`,
      ),
    ];
  if (Array.isArray(v)) return v.flatMap((x, i) => precisionWarnings(x, [...at, i]));
  if (isPlainObject(v))
    return Object.entries(v).flatMap(([k, x]) => precisionWarnings(x, [...at, k]));
  return [];
}

export interface DescriptionResult {
  /** The generated model, present only when there are no error problems. */
  value?: ApplicationDescription;
  /** The document as written (extensions inline), present only when there are no errors. */
  doc?: ApplicationDescriptionDoc;
  /** Every problem found; each message ends with the line it points at when known. */
  problems: Problem[];
}

/**
 * Validates margo.yaml text against every rule of digest 2 (see DESCRIPTION_RULES) and returns
 * all problems at once; it never throws, whatever the input. A vendor fixing a package wants
 * the whole list in one run, and the WFM, the agent and the suite must judge identically, so
 * all of them call this one function.
 */
export function validateDescription(text: string): DescriptionResult {
  const parsed = parseSingleYaml(text, "description");
  if (parsed.problems.length > 0) return { problems: parsed.problems };
  const raw = parsed.value;
  if (!isPlainObject(raw))
    return {
      problems: [
        problem(
          "description.type",
          "",
          raw === null || raw === undefined
            ? "the document is empty; expected the ApplicationDescription mapping"
            : "the document must be a mapping (the ApplicationDescription)",
        ),
      ],
    };
  const found: Problem[] = [];
  checkKind(raw, { kind: "object", shape: APPLICATION_DESCRIPTION_SHAPE }, [], found);
  found.push(...checkSemantics(raw), ...precisionWarnings(raw, []));
  const problems = found.map((p) => {
    const line = parsed.lineOf(p.pointer);
    return line === undefined ? p : { ...p, message: `${p.message} (line ${line})` };
  });
  if (hasErrors(problems)) return { problems };
  const doc = raw as unknown as ApplicationDescriptionDoc;
  return { value: toModel(doc), doc, problems };
}
