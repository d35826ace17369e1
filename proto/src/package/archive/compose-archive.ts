import { type Problem, problem, warning } from "../../problem.js";
import { resolveInside, splitArchivePath } from "./archive-paths.js";
import { type ArchiveView, checkComposeYaml } from "./compose-checks.js";
import { type ArchiveLimits, resolveLimits } from "./limits.js";
import { archivePointer, readTarGz, type TarEntry } from "./tar-reader.js";

/** The only valid name of the Compose file in the top directory. */
export const COMPOSE_FILE = "compose.yaml";
/** Names Compose itself would accept but the Margo archive format declares invalid. */
export const INVALID_COMPOSE_NAMES = ["compose.yml", "docker-compose.yaml", "docker-compose.yml"];

/** Reader rules after which the entry list is incomplete, so "missing X" checks would mislead. */
const STOPPING_RULES = new Set(["archive.corrupt", "archive.entry-limit", "archive.size-limit"]);

/**
 * PlannedEntry is one step of a safe extraction, derived only from entries that passed every
 * check: segments are clean, hard links are already turned into copies, symlinks resolve inside.
 */
export interface PlannedEntry {
  readonly segments: readonly string[];
  readonly kind: "dir" | "file" | "symlink";
  /** Normalised mode: 0755 for dirs and executables, 0644 otherwise; special bits dropped. */
  readonly mode: number;
  readonly content?: Uint8Array;
  readonly linkTarget?: string;
}

/** Inspection is everything validation learns; extraction reuses it instead of reading twice. */
export interface Inspection {
  problems: Problem[];
  topDir?: string;
  composeYaml?: string;
  plan: PlannedEntry[];
  /** Symlinks by normalised path, for extraction's own re-check. */
  symlinks: ReadonlyMap<string, string>;
}

/** normalisedMode keeps only "executable or not", which is all a Compose project needs. */
export function normalisedMode(kind: "dir" | "file", mode: number): number {
  return kind === "dir" || (mode & 0o111) !== 0 ? 0o755 : 0o644;
}

interface Checked {
  entry: TarEntry;
  segments: string[];
  key: string;
}

/**
 * inspectComposeArchive reads the archive once and applies every archive and compose.yaml rule,
 * collecting all problems. It is the single source of truth for validate and extract.
 */
export async function inspectComposeArchive(
  bytes: Uint8Array,
  opts: ArchiveLimits & { componentName?: string } = {},
): Promise<Inspection> {
  const limits = resolveLimits(opts);
  const read = await readTarGz(bytes, limits);
  const problems: Problem[] = [...read.problems];
  const complete = !read.problems.some((p) => STOPPING_RULES.has(p.rule));
  const good: Checked[] = [];

  // 1. Per-entry path hygiene; entries with unusable paths take no part in the structure checks.
  for (const entry of read.entries) {
    const where = archivePointer(entry.path);
    const split = splitArchivePath(entry.path);
    if ((entry.mode & 0o7000) !== 0) {
      problems.push(
        warning(
          "archive.mode-bits",
          where,
          `mode ${entry.mode.toString(8)} has setuid/setgid/sticky bits; they are dropped on extraction`,
        ),
      );
    }
    let usable = true;
    if (split.nul) {
      problems.push(problem("archive.corrupt", where, "path contains a NUL byte"));
      usable = false;
    }
    if (split.absolute) {
      problems.push(problem("archive.absolute-path", where, "entry path is absolute"));
      usable = false;
    }
    if (split.traversal) {
      problems.push(problem("archive.path-traversal", where, "entry path contains '..'"));
      usable = false;
    }
    if (!usable) continue;
    if (split.segments.length === 0) {
      if (entry.type !== "dir") {
        problems.push(problem("archive.single-top-dir", where, "entry has no name below the root"));
      }
      continue; // a "./" directory entry is the archive root itself
    }
    good.push({ entry, segments: split.segments, key: split.segments.join("/") });
  }

  // 2. Exactly one top-level directory.
  const tops = new Map<string, Checked>();
  for (const c of good) {
    const name = c.segments[0] as string;
    if (!tops.has(name)) tops.set(name, c);
  }
  // With several candidates, the one holding compose.yaml is the project; the rest are extras.
  const names = [...tops.keys()];
  const topDir =
    names.find((name) => good.some((g) => g.key === `${name}/${COMPOSE_FILE}`)) ?? names[0];
  if (topDir === undefined) {
    if (complete) {
      problems.push(problem("archive.single-top-dir", "archive:", "archive has no top directory"));
    }
    return { problems, plan: [], symlinks: new Map() };
  }
  for (const [name, c] of tops) {
    if (name !== topDir) {
      problems.push(
        problem(
          "archive.single-top-dir",
          archivePointer(c.entry.path),
          `"${name}" is a second top-level entry beside "${topDir}"; only one directory is allowed`,
        ),
      );
    }
  }
  const inside = good.filter((c) => c.segments[0] === topDir);
  for (const c of inside) {
    if (c.segments.length === 1 && c.entry.type !== "dir") {
      problems.push(
        problem(
          "archive.single-top-dir",
          archivePointer(c.entry.path),
          `top-level entry "${topDir}" is a ${c.entry.type}, not a directory`,
        ),
      );
    }
  }
  if (opts.componentName !== undefined && opts.componentName !== topDir) {
    problems.push(
      warning(
        "archive.top-dir-name",
        archivePointer(topDir),
        `top directory "${topDir}" should be named like the component "${opts.componentName}"`,
      ),
    );
  }

  // 3. Duplicates, entries below non-directories and below symlinks.
  const byKey = new Map<string, Checked>();
  const symlinks = new Map<string, string>();
  const implicitDirs = new Set<string>();
  for (const c of inside) {
    if (c.entry.type === "symlink") symlinks.set(c.key, c.entry.linkTarget ?? "");
    for (let i = 1; i < c.segments.length; i++) implicitDirs.add(c.segments.slice(0, i).join("/"));
  }
  const placed: Checked[] = [];
  for (const c of inside) {
    const where = archivePointer(c.entry.path);
    const earlier = byKey.get(c.key);
    if (earlier) {
      if (earlier.entry.type !== "dir" || c.entry.type !== "dir") {
        problems.push(
          problem(
            "archive.path-conflict",
            where,
            `"${c.key}" appears more than once in the archive`,
          ),
        );
      }
      continue;
    }
    let blocked = false;
    for (let i = 1; i < c.segments.length && !blocked; i++) {
      const parent = c.segments.slice(0, i).join("/");
      if (symlinks.has(parent)) {
        problems.push(
          problem(
            "archive.path-through-link",
            where,
            `"${parent}" is a symlink; writing "${c.key}" would go through it`,
          ),
        );
        blocked = true;
      } else {
        const p = byKey.get(parent);
        if (p && p.entry.type !== "dir") {
          problems.push(
            problem(
              "archive.path-conflict",
              where,
              `"${parent}" is a ${p.entry.type}, not a directory`,
            ),
          );
          blocked = true;
        }
      }
    }
    if (blocked) continue;
    byKey.set(c.key, c);
    placed.push(c);
  }

  // 4. Links, hard-link copies and the size they add; build the extraction plan in archive order.
  const limitsTotal = limits.maxUnpackedBytes;
  let unpacked = 0;
  for (const e of read.entries) if (e.type === "file") unpacked += e.content?.length ?? 0;
  const fileContent = new Map<string, { content: Uint8Array; mode: number }>();
  const plan: PlannedEntry[] = [];
  let overLimit = false;
  for (const c of placed) {
    const where = archivePointer(c.entry.path);
    const { entry } = c;
    switch (entry.type) {
      case "dir":
        if (c.segments.length > 0) plan.push({ segments: c.segments, kind: "dir", mode: 0o755 });
        break;
      case "file": {
        const content = entry.content ?? new Uint8Array();
        fileContent.set(c.key, { content, mode: entry.mode });
        plan.push({
          segments: c.segments,
          kind: "file",
          mode: normalisedMode("file", entry.mode),
          content,
        });
        break;
      }
      case "symlink": {
        const target = entry.linkTarget ?? "";
        if (target === "") {
          problems.push(problem("archive.corrupt", where, "symlink has an empty target"));
        } else if (resolveInside(c.segments.slice(0, -1), target, symlinks) === undefined) {
          problems.push(
            problem(
              "archive.link-escape",
              where,
              `symlink target "${target}" resolves outside the top directory`,
            ),
          );
        } else {
          plan.push({ segments: c.segments, kind: "symlink", mode: 0o777, linkTarget: target });
        }
        break;
      }
      case "hardlink": {
        const target = entry.linkTarget ?? "";
        const t = splitArchivePath(target);
        if (t.absolute || t.traversal || t.nul || t.segments[0] !== topDir) {
          problems.push(
            problem(
              "archive.link-escape",
              where,
              `hard link target "${target}" is outside the top directory`,
            ),
          );
          break;
        }
        const source = fileContent.get(t.segments.join("/"));
        if (!source) {
          problems.push(
            problem(
              "archive.link-target-missing",
              where,
              `hard link target "${target}" is not a regular file earlier in the archive`,
            ),
          );
          break;
        }
        unpacked += source.content.length;
        if (unpacked > limitsTotal) {
          if (!overLimit) {
            problems.push(
              problem(
                "archive.size-limit",
                where,
                `hard-link copies make the unpacked content exceed ${limitsTotal} bytes`,
              ),
            );
          }
          overLimit = true;
          break;
        }
        fileContent.set(c.key, source);
        plan.push({
          segments: c.segments,
          kind: "file",
          mode: normalisedMode("file", source.mode),
          content: source.content,
        });
        break;
      }
      default:
        break; // special files were reported by the reader and are never extracted
    }
  }

  // 5. compose.yaml itself and the rules about the files it names.
  const composeKey = `${topDir}/${COMPOSE_FILE}`;
  const composeEntry = byKey.get(composeKey);
  const composeFile = fileContent.get(composeKey);
  const wrongNames = INVALID_COMPOSE_NAMES.filter((n) => byKey.has(`${topDir}/${n}`));
  let composeYaml: string | undefined;
  if (composeFile) {
    for (const n of wrongNames) {
      problems.push(
        warning(
          "archive.compose-file-name",
          archivePointer(`${topDir}/${n}`),
          `"${n}" is ignored: only ${COMPOSE_FILE} is used; remove it to avoid confusion`,
        ),
      );
    }
    try {
      composeYaml = new TextDecoder("utf-8", { fatal: true }).decode(composeFile.content);
    } catch {
      problems.push(problem("compose.yaml-syntax", "compose.yaml#", "compose.yaml is not UTF-8"));
    }
  } else if (composeEntry) {
    problems.push(
      problem(
        "archive.compose-file-name",
        archivePointer(composeEntry.entry.path),
        `${composeKey} must be a regular file, not a ${composeEntry.entry.type}`,
      ),
    );
  } else if (complete) {
    const found = wrongNames.length > 0 ? `; found invalid name(s): ${wrongNames.join(", ")}` : "";
    problems.push(
      problem(
        "archive.compose-file-name",
        archivePointer(composeKey),
        `the top directory must contain ${COMPOSE_FILE}${found}`,
      ),
    );
  }

  if (composeYaml !== undefined && complete) {
    const view: ArchiveView = {
      kindOf(rel) {
        const resolved = resolveInside([topDir], rel.join("/"), symlinks);
        if (resolved === undefined) return undefined;
        const key = resolved.join("/");
        if (resolved.length === 1 || implicitDirs.has(key)) return "dir";
        const c = byKey.get(key);
        if (!c) return undefined;
        if (fileContent.has(key)) return "file";
        return c.entry.type === "dir" ? "dir" : "other";
      },
      includes(rel) {
        const key = [topDir, ...rel].join("/");
        return rel.length === 0 || byKey.has(key) || implicitDirs.has(key);
      },
    };
    problems.push(...checkComposeYaml(composeYaml, view));
  }

  return {
    problems,
    topDir,
    ...(composeYaml !== undefined ? { composeYaml } : {}),
    plan,
    symlinks,
  };
}

/**
 * validateComposeArchive checks a Compose Archive against every Margo rule (layout, compose.yaml
 * name, path and link safety, special files, limits, compose.yaml references) and returns all
 * problems. WFM and device must run it before extracting or deploying (checklist 74).
 */
export async function validateComposeArchive(
  bytes: Uint8Array,
  opts?: ArchiveLimits & { componentName?: string },
): Promise<{ problems: Problem[]; topDir?: string; composeYaml?: string }> {
  const { problems, topDir, composeYaml } = await inspectComposeArchive(bytes, opts);
  return {
    problems,
    ...(topDir !== undefined ? { topDir } : {}),
    ...(composeYaml !== undefined ? { composeYaml } : {}),
  };
}
