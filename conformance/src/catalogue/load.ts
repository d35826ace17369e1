import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import type { Level, Persona } from "../core/types.js";
import { LEVELS, PERSONAS, type Requirement } from "./requirement.js";

/** The catalogue shipped with the harness (conformance/catalogue/requirements.yaml). */
export const DEFAULT_CATALOGUE_PATH = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../catalogue/requirements.yaml",
);

/** `<persona>-<NNN>[s]`; the persona prefix must match the entry's persona (checked separately). */
const ID_PATTERN = /^(wfm|device|package|mis|registry)-(\d{3})(s?)$/;

const KNOWN_KEYS = new Set([
  "id",
  "level",
  "persona",
  "section",
  "checklistItem",
  "crId",
  "text",
  "untestable",
  "notCovered",
]);

/**
 * A catalogue that does not follow the format. Lists every problem at once, so one run of the
 * catalogue test shows the author all of them instead of one per edit.
 */
export class CatalogueError extends Error {
  override readonly name = "CatalogueError";
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.length} problem(s)\n  ${problems.join("\n  ")}`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === "string" && v.trim() !== "";
}

/**
 * Validates a parsed catalogue document (`{ requirements: [...] }`) and returns its entries.
 * Exposed apart from the file reader so tests can feed a broken catalogue from memory.
 */
export function parseCatalogue(doc: unknown, source = "<memory>"): Requirement[] {
  const problems: string[] = [];
  if (!isRecord(doc) || !Array.isArray(doc.requirements))
    throw new CatalogueError(source, ["top level must be a mapping with a requirements list"]);
  const out: Requirement[] = [];
  const seen = new Map<string, number>();
  doc.requirements.forEach((raw: unknown, i) => {
    const where = `requirements[${i}]`;
    if (!isRecord(raw)) {
      problems.push(`${where}: must be a mapping`);
      return;
    }
    const id = raw.id;
    const label = typeof id === "string" ? `${where} (${id})` : where;
    for (const k of Object.keys(raw))
      if (!KNOWN_KEYS.has(k)) problems.push(`${label}: unknown key ${k}`);
    const m = typeof id === "string" ? ID_PATTERN.exec(id) : null;
    if (typeof id !== "string" || !m) {
      problems.push(`${label}: id must match <persona>-<NNN>[s], e.g. wfm-049 or wfm-049s`);
    } else {
      const first = seen.get(id);
      if (first !== undefined)
        problems.push(`${label}: duplicate id (first at requirements[${first}])`);
      else seen.set(id, i);
    }
    const { level, persona, section, checklistItem, crId, text, untestable, notCovered } = raw;
    if (typeof level !== "string" || !(LEVELS as readonly string[]).includes(level))
      problems.push(`${label}: level must be one of ${LEVELS.join(", ")}`);
    if (typeof persona !== "string" || !(PERSONAS as readonly string[]).includes(persona))
      problems.push(`${label}: persona must be one of ${PERSONAS.join(", ")}`);
    else if (m && m[1] !== persona)
      problems.push(`${label}: id prefix ${m[1]} does not match persona ${persona}`);
    if (!nonEmptyString(section)) problems.push(`${label}: section is required`);
    if (!nonEmptyString(text)) problems.push(`${label}: text is required`);
    if (crId !== undefined && !nonEmptyString(crId))
      problems.push(`${label}: crId must be a non-empty string`);
    if (untestable !== undefined && !nonEmptyString(untestable))
      problems.push(`${label}: untestable must give the reason`);
    if (notCovered !== undefined && !nonEmptyString(notCovered))
      problems.push(`${label}: notCovered must give the reason`);
    if (untestable !== undefined && notCovered !== undefined)
      problems.push(`${label}: a requirement is either untestable or not covered yet, not both`);
    if (m) {
      const num = Number(m[2]);
      const suffixS = m[3] === "s";
      if (num < 100) {
        // A checklist requirement: the number is the item number.
        if (checklistItem !== num)
          problems.push(`${label}: checklistItem must be ${num} (the id's number)`);
      } else if (checklistItem !== undefined) {
        problems.push(`${label}: ids >= 100 are OpenAPI additions and carry no checklistItem`);
      }
      if (suffixS && level !== "SHOULD")
        problems.push(
          `${label}: an s-suffixed id is the SHOULD half of an item; level must be SHOULD`,
        );
    } else if (checklistItem !== undefined && !Number.isInteger(checklistItem)) {
      problems.push(`${label}: checklistItem must be an integer`);
    }
    const req: Requirement = {
      id: String(id),
      level: level as Level,
      persona: persona as Persona,
      section: String(section),
      text: String(text),
    };
    if (typeof checklistItem === "number") req.checklistItem = checklistItem;
    if (typeof crId === "string") req.crId = crId;
    if (typeof untestable === "string") req.untestable = untestable;
    if (typeof notCovered === "string") req.notCovered = notCovered;
    out.push(req);
  });
  if (problems.length > 0) throw new CatalogueError(source, problems);
  return out;
}

/** Reads and validates the catalogue; throws CatalogueError listing every problem. */
export function loadCatalogue(path: string = DEFAULT_CATALOGUE_PATH): Requirement[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"), { uniqueKeys: true });
  } catch (err) {
    throw new CatalogueError(path, [`cannot read: ${(err as Error).message}`]);
  }
  return parseCatalogue(doc, path);
}

let cached: Map<string, Requirement> | undefined;

/**
 * The default catalogue keyed by id, read once per process: the runner looks up every cited id
 * when it builds a report.
 */
export function catalogueById(path?: string): Map<string, Requirement> {
  if (path !== undefined) return new Map(loadCatalogue(path).map((r) => [r.id, r]));
  cached ??= new Map(loadCatalogue().map((r) => [r.id, r]));
  return cached;
}
