/**
 * The vendor's known-failing list: check ids that still run and are reported, but whose failure
 * does not count as new (exit code 2 instead of 1). A YAML or JSON list of ids, or `{checks: [...]}`.
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";

/** The known-failing file is not a list of check ids. */
export class KnownFailingError extends Error {
  override readonly name = "KnownFailingError";
}

export function parseKnownFailing(text: string, source = "known-failing list"): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new KnownFailingError(`${source}: not YAML/JSON: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return [];
  const list = Array.isArray(doc) ? doc : (doc as { checks?: unknown }).checks;
  if (!Array.isArray(list)) {
    throw new KnownFailingError(`${source}: expected a list of check ids or {checks: [...]}`);
  }
  const bad = list.filter((x) => typeof x !== "string" || x.trim() === "");
  if (bad.length > 0)
    throw new KnownFailingError(
      `${source}: entries must be check ids (strings); got ${JSON.stringify(bad.slice(0, 3))}`,
    );
  return (list as string[]).map((s) => s.trim());
}

export async function loadKnownFailing(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new KnownFailingError(
      `cannot read known-failing file ${file}: ${(err as Error).message}`,
    );
  }
  return parseKnownFailing(text, file);
}
