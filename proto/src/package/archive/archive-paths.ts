/**
 * Path handling shared by validation, extraction and packing, so the three can never disagree on
 * what "inside the top directory" means.
 */

/** SplitPath is an archive path broken into clean segments plus what was wrong with it. */
export interface SplitPath {
  /** Segments without "", "." (and without ".." even when traversal is true). */
  readonly segments: string[];
  /** Starts with "/", "\" or a drive letter: would land outside any extraction directory. */
  readonly absolute: boolean;
  /** Has a ".." segment after turning "\" into "/". */
  readonly traversal: boolean;
  /** Has a NUL byte, which no filesystem path may carry. */
  readonly nul: boolean;
}

/**
 * splitArchivePath normalises like a hostile extractor might (backslashes as separators, "./"
 * dropped) so that a check cannot be dodged by spelling a path differently.
 */
export function splitArchivePath(raw: string): SplitPath {
  const slashed = raw.replaceAll("\\", "/");
  const absolute = slashed.startsWith("/") || /^[A-Za-z]:/.test(slashed);
  const parts = slashed.split("/").filter((s) => s !== "" && s !== ".");
  return {
    segments: parts.filter((s) => s !== ".."),
    absolute,
    traversal: parts.includes(".."),
    nul: raw.includes("\0"),
  };
}

/** Most symlinks followed while resolving one path, as Linux's ELOOP limit. */
const MAX_LINK_HOPS = 40;

/**
 * resolveInside resolves `target` as seen from the directory `fromDir` (segments starting with the
 * top directory), following symlinks of the archive itself, and returns the resolved segments,
 * or undefined if any step leaves the top directory, meets an absolute target or loops.
 * Lexical checks alone are not enough: with `top/x -> .`, the target `x/..` looks like `top`
 * but really is the parent of `top`.
 */
export function resolveInside(
  fromDir: readonly string[],
  target: string,
  symlinks: ReadonlyMap<string, string>,
): string[] | undefined {
  const top = fromDir[0];
  if (top === undefined) return undefined;
  const first = splitRaw(target);
  if (first === undefined) return undefined;
  const queue = [...fromDir, ...first];
  const out: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const seg = queue.shift() as string;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length <= 1) return undefined; // would leave the top directory
      out.pop();
      continue;
    }
    out.push(seg);
    if (out[0] !== top) return undefined;
    const link = symlinks.get(out.join("/"));
    if (link === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return undefined;
    const next = splitRaw(link);
    if (next === undefined) return undefined;
    out.pop();
    queue.unshift(...next);
  }
  return out;
}

/** splitRaw splits a link target, or undefined when it is absolute (never inside the archive). */
function splitRaw(target: string): string[] | undefined {
  if (target.includes("\0")) return undefined;
  const slashed = target.replaceAll("\\", "/");
  if (slashed.startsWith("/") || /^[A-Za-z]:/.test(slashed)) return undefined;
  return slashed.split("/");
}
