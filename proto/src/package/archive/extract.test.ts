import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfinedWriter, UnsafeExtraction } from "./extract.js";

// The writer is the last line of defence: these tests hand it paths validation would never let
// through and a filesystem an attacker prepared, and expect it to refuse every time.

let outer: string;
let base: string;

beforeEach(async () => {
  outer = await mkdtemp(join(tmpdir(), "margo-confined-"));
  base = join(outer, "base");
  await mkdir(base);
});

afterEach(async () => {
  await rm(outer, { recursive: true, force: true });
});

describe("ConfinedWriter", () => {
  it("refuses segments that could leave the base", async () => {
    const w = new ConfinedWriter(base);
    for (const segments of [["..", "x"], ["a", ""], ["a/../../x"], ["a\\..\\x"], ["."], ["a\0b"]]) {
      await expect(w.file(segments, new Uint8Array(1), 0o644)).rejects.toBeInstanceOf(
        UnsafeExtraction,
      );
    }
    expect(existsSync(join(outer, "x"))).toBe(false);
  });

  it("never writes through a symlinked parent that appeared on disk", async () => {
    await symlink(outer, join(base, "top"));
    const w = new ConfinedWriter(base);
    await expect(w.file(["top", "pwned"], new Uint8Array(1), 0o644)).rejects.toBeInstanceOf(
      UnsafeExtraction,
    );
    expect(existsSync(join(outer, "pwned"))).toBe(false);
  });

  it("never follows a symlink planted at the file itself", async () => {
    await writeFile(join(outer, "victim"), "original");
    await mkdir(join(base, "top"));
    await symlink(join(outer, "victim"), join(base, "top", "file"));
    const w = new ConfinedWriter(base);
    await expect(w.file(["top", "file"], new TextEncoder().encode("x"), 0o644)).rejects.toThrow(
      /EEXIST/,
    );
    expect(await readFile(join(outer, "victim"), "utf8")).toBe("original");
  });

  it("sets the given mode through the descriptor regardless of umask", async () => {
    const w = new ConfinedWriter(base);
    await w.file(["top", "a", "run"], new TextEncoder().encode("#!"), 0o755);
    expect((await lstat(join(base, "top", "a", "run"))).mode & 0o7777).toBe(0o755);
    expect((await lstat(join(base, "top", "a"))).mode & 0o7777).toBe(0o755);
  });
});
