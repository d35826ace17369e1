import { parseDocument } from "yaml";
import { type Problem, pointer, problem, warning } from "../../problem.js";

/**
 * ArchiveView answers questions about the archive's content relative to its top directory, so
 * the compose rules do not need to know how entries, symlinks and implicit directories are stored.
 */
export interface ArchiveView {
  /** Kind of what is at `rel` (following the archive's own symlinks), or undefined if nothing. */
  kindOf(rel: readonly string[]): "file" | "dir" | "other" | undefined;
  /** Whether anything is included at `rel` or below it. */
  includes(rel: readonly string[]): boolean;
}

/** Compose problems point into compose.yaml with a JSON pointer after this prefix. */
export const COMPOSE_POINTER_PREFIX = "compose.yaml#";

function at(...segments: Array<string | number>): string {
  return `${COMPOSE_POINTER_PREFIX}${pointer(...segments)}`;
}

type Rel = { kind: "inside"; segments: string[] } | { kind: "outside" } | { kind: "interpolated" };

/**
 * relativeToProject turns a compose path into segments below the top directory the way Compose
 * resolves it against the project directory; "~", absolute paths and ".." above the project are
 * outside the archive, and "$" means interpolation we cannot evaluate.
 */
function relativeToProject(path: string): Rel {
  if (path.includes("$")) return { kind: "interpolated" };
  const slashed = path.replaceAll("\\", "/");
  if (slashed.startsWith("/") || slashed.startsWith("~") || /^[A-Za-z]:/.test(slashed)) {
    return { kind: "outside" };
  }
  const out: string[] = [];
  for (const seg of slashed.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return { kind: "outside" };
      out.pop();
    } else {
      out.push(seg);
    }
  }
  return { kind: "inside", segments: out };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** requireIncludedFile is the env_file / configs rule: the file must ship inside the archive. */
function requireIncludedFile(
  view: ArchiveView,
  path: unknown,
  where: string,
  rule: string,
  what: string,
  optional: boolean,
  problems: Problem[],
): void {
  if (typeof path !== "string" || path === "") {
    problems.push(problem(rule, where, `${what} must be a non-empty path string`));
    return;
  }
  const rel = relativeToProject(path);
  if (rel.kind === "interpolated") {
    problems.push(
      warning(rule, where, `${what} "${path}" uses interpolation; it cannot be checked offline`),
    );
    return;
  }
  if (rel.kind === "outside") {
    problems.push(
      problem(rule, where, `${what} "${path}" must be a relative path inside the top directory`),
    );
    return;
  }
  const kind = view.kindOf(rel.segments);
  if (kind === "file") return;
  const found = kind === undefined ? "is not in the archive" : `is a ${kind}, not a regular file`;
  if (optional) {
    problems.push(warning(rule, where, `optional ${what} "${path}" ${found}`));
  } else {
    problems.push(problem(rule, where, `${what} "${path}" ${found}; it must be included`));
  }
}

/** forbidIncluded is the secrets / bind-mount rule: the source must NOT ship in the archive. */
function forbidIncluded(
  view: ArchiveView,
  path: string,
  where: string,
  rule: string,
  what: string,
  problems: Problem[],
): void {
  const rel = relativeToProject(path);
  if (rel.kind !== "inside") return;
  if (view.includes(rel.segments)) {
    problems.push(problem(rule, where, `${what} "${path}" is included in the archive; remove it`));
  }
}

function checkEnvFiles(view: ArchiveView, service: string, value: unknown, out: Problem[]): void {
  const rule = "compose.env-file-missing";
  const base = ["services", service, "env_file"] as const;
  const one = (item: unknown, where: Array<string | number>) => {
    if (isRecord(item)) {
      const optional = item.required === false || item.required === "false";
      requireIncludedFile(view, item.path, at(...where, "path"), rule, "env_file", optional, out);
    } else {
      requireIncludedFile(view, item, at(...where), rule, "env_file", false, out);
    }
  };
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) one(item, [...base, i]);
  } else if (value !== undefined && value !== null) one(value, [...base]);
}

function checkVolumes(view: ArchiveView, service: string, value: unknown, out: Problem[]): void {
  if (!Array.isArray(value)) return;
  const rule = "compose.bind-source-included";
  for (const [i, item] of value.entries()) {
    const where = ["services", service, "volumes", i] as const;
    if (typeof item === "string") {
      // Short syntax SRC:DST[:MODE]; only a source starting with "." is a project-relative bind
      // ("/" and "~" are host paths, a bare name is a named volume, no ":" is anonymous).
      const colon = item.indexOf(":");
      const source = colon > 0 ? item.slice(0, colon) : "";
      if (source.startsWith(".")) {
        forbidIncluded(view, source, at(...where), rule, "bind source", out);
      }
    } else if (isRecord(item) && item.type === "bind" && typeof item.source === "string") {
      forbidIncluded(view, item.source, at(...where, "source"), rule, "bind source", out);
    }
  }
}

/**
 * checkComposeYaml applies the Compose Archive content rules to compose.yaml: env_file and
 * file-based configs must be included, secret files and bind-mount sources must not. It reports
 * every violation with a JSON pointer into compose.yaml and never throws.
 */
export function checkComposeYaml(text: string, view: ArchiveView): Problem[] {
  const out: Problem[] = [];
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      out.push(problem("compose.yaml-syntax", COMPOSE_POINTER_PREFIX, err.message));
    }
    return out;
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    out.push(
      problem(
        "compose.yaml-syntax",
        COMPOSE_POINTER_PREFIX,
        err instanceof Error ? err.message : String(err),
      ),
    );
    return out;
  }
  if (!isRecord(root)) {
    out.push(problem("compose.yaml-syntax", COMPOSE_POINTER_PREFIX, "top level must be a mapping"));
    return out;
  }
  if (isRecord(root.services)) {
    for (const [name, service] of Object.entries(root.services)) {
      if (!isRecord(service)) continue;
      checkEnvFiles(view, name, service.env_file, out);
      checkVolumes(view, name, service.volumes, out);
    }
  }
  if (isRecord(root.configs)) {
    for (const [name, config] of Object.entries(root.configs)) {
      if (!isRecord(config) || config.file === undefined) continue;
      requireIncludedFile(
        view,
        config.file,
        at("configs", name, "file"),
        "compose.config-file-missing",
        "config file",
        false,
        out,
      );
    }
  }
  if (isRecord(root.secrets)) {
    for (const [name, secret] of Object.entries(root.secrets)) {
      if (!isRecord(secret) || typeof secret.file !== "string") continue;
      forbidIncluded(
        view,
        secret.file,
        at("secrets", name, "file"),
        "compose.secret-file-included",
        "secret file",
        out,
      );
    }
  }
  return out;
}
