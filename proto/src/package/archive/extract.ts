import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, realpath, rm, symlink } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { hasErrors, type Problem, problem } from "../../problem.js";
import { resolveInside } from "./archive-paths.js";
import { inspectComposeArchive } from "./compose-archive.js";
import { ArchiveRejectedError } from "./errors.js";
import type { ArchiveLimits } from "./limits.js";

/** UnsafeExtraction is a defence-in-depth trip: validation passed but a write would escape. */
export class UnsafeExtraction extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeExtraction";
  }
}

const CREATE_FILE =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * ConfinedWriter writes only below `base` and never through a link: every path is rebuilt from
 * checked segments, every parent is lstat'ed (a symlink there is refused), files are created
 * with O_EXCL|O_NOFOLLOW and modes are set through the open descriptor, never by path.
 */
export class ConfinedWriter {
  private readonly dirs = new Set<string>();

  constructor(private readonly base: string) {
    this.dirs.add(base);
  }

  private pathOf(segments: readonly string[]): string {
    for (const seg of segments) {
      if (
        seg === "" ||
        seg === "." ||
        seg === ".." ||
        seg.includes("/") ||
        seg.includes("\\") ||
        seg.includes("\0")
      ) {
        throw new UnsafeExtraction(`refusing path segment ${JSON.stringify(seg)}`);
      }
    }
    const path = join(this.base, ...segments);
    if (!path.startsWith(this.base + sep)) {
      throw new UnsafeExtraction(`refusing ${path}: not inside ${this.base}`);
    }
    return path;
  }

  private async ensureDir(path: string): Promise<void> {
    if (this.dirs.has(path)) return;
    if (!path.startsWith(this.base + sep)) {
      throw new UnsafeExtraction(`refusing ${path}: not inside ${this.base}`);
    }
    await this.ensureDir(dirname(path));
    try {
      const st = await lstat(path);
      if (!st.isDirectory()) throw new UnsafeExtraction(`${path} exists and is not a directory`);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
      await mkdir(path, { mode: 0o755 });
    }
    const handle = await open(path, OPEN_DIR);
    try {
      await handle.chmod(0o755);
    } finally {
      await handle.close();
    }
    this.dirs.add(path);
  }

  async dir(segments: readonly string[]): Promise<void> {
    await this.ensureDir(this.pathOf(segments));
  }

  async file(segments: readonly string[], content: Uint8Array, mode: number): Promise<void> {
    const path = this.pathOf(segments);
    await this.ensureDir(dirname(path));
    const handle = await open(path, CREATE_FILE, mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
  }

  async symlink(segments: readonly string[], target: string): Promise<void> {
    const path = this.pathOf(segments);
    await this.ensureDir(dirname(path));
    await symlink(target, path);
  }
}

/** prepareTarget accepts a missing or empty real directory and returns its real path. */
async function prepareTarget(targetDir: string): Promise<{ base: string; created: boolean }> {
  let created = false;
  try {
    const st = await lstat(targetDir);
    if (!st.isDirectory()) {
      throw new ArchiveRejectedError("extraction target refused", [
        problem("archive.target-not-empty", targetDir, "target exists and is not a real directory"),
      ]);
    }
    if ((await readdir(targetDir)).length > 0) {
      throw new ArchiveRejectedError("extraction target refused", [
        problem("archive.target-not-empty", targetDir, "target directory is not empty"),
      ]);
    }
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
    await mkdir(targetDir, { recursive: true, mode: 0o755 });
    created = true;
  }
  return { base: await realpath(targetDir), created };
}

/**
 * extractComposeArchive validates, then extracts into `targetDir` (which must be missing or an
 * empty directory) and returns the project directory `<targetDir>/<top dir>` as `root`, with the
 * warnings found. Any error-severity problem refuses the archive before anything is written.
 *
 * Choices: hard links are written as independent copies of their (earlier, inside) target;
 * symlinks are recreated only when they resolve inside the top directory, and only after all
 * files, so no write can pass through one; modes become 0644/0755. If writing fails, everything
 * written is removed again and ArchiveRejectedError (archive.extract-failed) is thrown.
 */
export async function extractComposeArchive(
  bytes: Uint8Array,
  targetDir: string,
  opts?: ArchiveLimits,
): Promise<{ problems: Problem[]; root: string }> {
  const inspection = await inspectComposeArchive(bytes, opts);
  const { problems, topDir, plan, symlinks } = inspection;
  if (hasErrors(problems) || topDir === undefined) {
    throw new ArchiveRejectedError("compose archive rejected", problems);
  }
  const { base, created } = await prepareTarget(targetDir);
  const writer = new ConfinedWriter(base);
  try {
    for (const step of plan) {
      if (step.segments[0] !== topDir)
        throw new UnsafeExtraction("entry outside the top directory");
      if (step.kind === "dir") await writer.dir(step.segments);
      else if (step.kind === "file") {
        await writer.file(step.segments, step.content ?? new Uint8Array(), step.mode);
      }
    }
    for (const step of plan) {
      if (step.kind !== "symlink") continue;
      const target = step.linkTarget ?? "";
      if (resolveInside(step.segments.slice(0, -1), target, symlinks) === undefined) {
        throw new UnsafeExtraction(`symlink ${step.segments.join("/")} -> ${target} escapes`);
      }
      await writer.symlink(step.segments, target);
    }
  } catch (err) {
    for (const name of await readdir(base)) {
      await rm(join(base, name), { recursive: true, force: true });
    }
    if (created) await rm(base, { recursive: true, force: true });
    const message = err instanceof Error ? err.message : String(err);
    throw new ArchiveRejectedError("compose archive extraction failed", [
      ...problems,
      problem("archive.extract-failed", targetDir, message),
    ]);
  }
  return { problems, root: join(base, topDir) };
}
