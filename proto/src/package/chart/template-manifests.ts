import { parseAllDocuments } from "yaml";

/**
 * Finds Helm hooks and CRDs in a template by reading it as YAML, not by line patterns: YAML
 * spells one mapping in many ways (flow maps, quoted keys, JSON form, trailing comments), and a
 * line regex misses most of them. Template actions are blanked first so ordinary templates
 * parse; a document that still does not parse is scanned textually and conservatively, so a
 * templating trick cannot hide a hook by breaking the parse.
 */
export interface ManifestFinding {
  kind: "hook" | "crd";
  /** 1-based index of the YAML document in the template. */
  document: number;
  /** 1-based line where that document (or the textual match) starts. */
  line: number;
  /** How the finding was made, for the message. */
  via: "parsed" | "text" | "action";
}

/** Actions that print nothing; the rest are replaced by a same-length placeholder scalar. */
const SILENT_ACTION =
  /^(?:\/\*[\s\S]*\*\/|(?:if|else|end|range|with|define|break|continue)\b|\$[\w]*\s*:?=)/;

/**
 * Replaces every `{{ ... }}` by text of the same length (newlines kept), so offsets and line
 * numbers of the result equal those of the template: silent actions become spaces, printing
 * actions a run of "_" (a plain scalar wherever a value or key may stand).
 */
export function neutraliseActions(template: string): string {
  return template.replace(/\{\{[\s\S]*?\}\}/g, (action) => {
    const body = action.slice(2, -2).replace(/^-?\s*/, "");
    const fill = SILENT_ACTION.test(body) ? " " : "_";
    return action.replace(/[^\n]/g, fill);
  });
}

/** String literals inside actions that could print a hook key or the CRD kind. */
const ACTION_LITERAL = /"((?:[^"\\]|\\.)*)"|`([^`]*)`/g;

function actionLiterals(template: string): { value: string; index: number }[] {
  const out: { value: string; index: number }[] = [];
  for (const m of template.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
    for (const s of (m[1] ?? "").matchAll(ACTION_LITERAL))
      out.push({ value: (s[1] ?? s[2] ?? "").trim(), index: m.index ?? 0 });
  }
  return out;
}

const TEXT_HOOK = /["']?\bhelm\.sh\/hook["']?\s*:/;
const TEXT_CRD = /["']?\bkind["']?\s*:\s*["']?CustomResourceDefinition\b/;
const MAX_ALIASES = 100;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The objects a document applies: itself, or the items of a `*List` wrapper. */
function objectsOf(value: unknown): Record<string, unknown>[] {
  if (!isMap(value)) return [];
  const items = value.items;
  if (typeof value.kind === "string" && value.kind.endsWith("List") && Array.isArray(items))
    return [value, ...items.filter(isMap)];
  return [value];
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Returns every hook and CRD the template declares, one finding per kind and document. */
export function findHooksAndCrds(template: string): ManifestFinding[] {
  const out: ManifestFinding[] = [];
  const neutral = neutraliseActions(template);
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    const parsed = parseAllDocuments(neutral, { uniqueKeys: false, merge: true });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch {
    docs = [];
  }
  const textual = (doc: number, start: number, end: number) => {
    const slice = template.slice(start, end);
    for (const [kind, re] of [
      ["hook", TEXT_HOOK],
      ["crd", TEXT_CRD],
    ] as const) {
      const m = re.exec(slice);
      if (m)
        out.push({ kind, document: doc, line: lineAt(template, start + m.index), via: "text" });
    }
  };
  if (docs.length === 0 && template.trim() !== "") textual(1, 0, template.length);
  docs.forEach((d, i) => {
    const n = i + 1;
    const [start, , end] = d.range ?? [0, 0, template.length];
    let value: unknown;
    let ok = d.errors.length === 0;
    if (ok) {
      try {
        value = d.toJS({ maxAliasCount: MAX_ALIASES });
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      textual(n, start, end);
      return;
    }
    const line = lineAt(template, d.contents?.range?.[0] ?? start);
    const objects = objectsOf(value);
    if (objects.some((o) => o.kind === "CustomResourceDefinition"))
      out.push({ kind: "crd", document: n, line, via: "parsed" });
    const hooked = objects.some((o) => {
      const meta = o.metadata;
      const ann = isMap(meta) ? meta.annotations : undefined;
      return isMap(ann) && Object.hasOwn(ann, "helm.sh/hook");
    });
    if (hooked) out.push({ kind: "hook", document: n, line, via: "parsed" });
  });
  // A printing action can emit the key or kind itself (`{{ "helm.sh/hook" }}: x`); the blanked
  // text no longer shows it, so literal strings in actions count on their own.
  for (const lit of actionLiterals(template)) {
    const kind =
      lit.value === "helm.sh/hook" ? "hook" : lit.value === "CustomResourceDefinition" ? "crd" : "";
    if (kind === "") continue;
    const line = lineAt(template, lit.index);
    const document =
      docs.findIndex((d) => d.range && lit.index >= d.range[0] && lit.index < d.range[2]) + 1 || 1;
    if (!out.some((f) => f.kind === kind && f.document === document))
      out.push({ kind, document, line, via: "action" });
  }
  return out;
}
