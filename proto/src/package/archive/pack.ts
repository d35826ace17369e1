import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { type Problem, problem } from "../../problem.js";
import { resolveInside } from "./archive-paths.js";
import { normalisedMode } from "./compose-archive.js";
import { ArchiveRejectedError } from "./errors.js";
import type { TarEntrySpec } from "./tar-writer.js";
import { writeTarGz } from "./tar-writer.js";

/** The zlib level packing pins: changing it changes every digest ever published. */
const PACK_LEVEL = 9;

interface Collected {
  key: string;
  spec: TarEntrySpec;
}

async function walk(
  absDir: string,
  relSegments: string[],
  top: string,
  out: Collected[],
  links: Map<string, string>,
  problems: Problem[],
): Promise<void> {
  const names = (await readdir(absDir)).sort();
  for (const name of names) {
    const abs = join(absDir, name);
    const segments = [...relSegments, name];
    const key = [top, ...segments].join("/");
    const st = await lstat(abs);
    if (st.isDirectory()) {
      out.push({ key, spec: { path: `${key}/`, type: "dir", mode: 0o755 } });
      await walk(abs, segments, top, out, links, problems);
    } else if (st.isFile()) {
      const content = await readFile(abs);
      out.push({
        key,
        spec: { path: key, type: "file", mode: normalisedMode("file", st.mode), content },
      });
    } else if (st.isSymbolicLink()) {
      const target = await readlink(abs);
      links.set(key, target);
      out.push({ key, spec: { path: key, type: "symlink", mode: 0o777, linkTarget: target } });
    } else {
      problems.push(
        problem("archive.special-file", `archive:${key}`, `${abs} is not a file, dir or symlink`),
      );
    }
  }
}

/**
 * packComposeArchive turns a project directory into a Compose Archive whose bytes depend only on
 * the directory's names, contents, executable bits and symlink targets: entries sorted, mtime 0,
 * uid/gid 0, no owner names, normalised modes and a fixed gzip header. The same tree therefore
 * always yields the same OCI digest. Symlinks that would leave the directory and special files
 * are refused with ArchiveRejectedError; the top directory is `opts.topDir ?? basename(dir)`.
 */
export async function packComposeArchive(
  dir: string,
  opts: { topDir?: string } = {},
): Promise<Uint8Array> {
  const top = opts.topDir ?? basename(resolve(dir));
  if (top === "" || top === "." || top === ".." || /[/\\\0]/.test(top)) {
    throw new ArchiveRejectedError("cannot pack", [
      problem(
        "archive.single-top-dir",
        `archive:${top}`,
        `"${top}" is not a usable directory name`,
      ),
    ]);
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) {
    throw new ArchiveRejectedError("cannot pack", [
      problem("archive.single-top-dir", `archive:${top}`, `${dir} is not a directory`),
    ]);
  }
  const collected: Collected[] = [
    { key: top, spec: { path: `${top}/`, type: "dir", mode: 0o755 } },
  ];
  const links = new Map<string, string>();
  const problems: Problem[] = [];
  await walk(dir, [], top, collected, links, problems);
  for (const [key, target] of links) {
    const parent = key.split("/").slice(0, -1);
    if (resolveInside(parent, target, links) === undefined) {
      problems.push(
        problem("archive.link-escape", `archive:${key}`, `symlink -> "${target}" leaves ${dir}`),
      );
    }
  }
  if (problems.length > 0) throw new ArchiveRejectedError("cannot pack", problems);
  collected.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return writeTarGz(
    collected.map((c) => c.spec),
    { level: PACK_LEVEL },
  );
}
