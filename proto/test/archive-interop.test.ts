import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  packComposeArchive,
  readTarGz,
  validateComposeArchive,
} from "../src/package/archive/index.js";

// Our reader and writer must agree with GNU tar (what vendors will use to build archives and what
// operators will use to inspect ours), in every format GNU tar writes.

let scratch: string;
let project: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "margo-archive-interop-"));
  project = join(scratch, "src", "demo");
  const longDir = join(project, "d".repeat(120));
  await mkdir(longDir, { recursive: true });
  await writeFile(join(project, "compose.yaml"), "services:\n  a:\n    image: busybox\n");
  await writeFile(join(longDir, "f".repeat(120)), "long\n");
  await symlink("compose.yaml", join(project, "alias.yaml"));
  execFileSync("ln", [join(project, "compose.yaml"), join(project, "hard.yaml")]);
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("GNU tar interoperability", () => {
  for (const format of ["gnu", "pax", "ustar"] as const) {
    it(`reads GNU tar --format=${format} archives without problems`, async () => {
      const file = join(scratch, `${format}.tgz`);
      // ustar cannot store the 241-byte path; GNU tar then skips it and exits 2.
      try {
        execFileSync(
          "tar",
          [`--format=${format}`, "-C", join(scratch, "src"), "-czf", file, "demo"],
          {
            stdio: "pipe",
          },
        );
      } catch (err) {
        if (format !== "ustar") throw err;
      }
      const bytes = await readFile(file);
      const { problems, topDir } = await validateComposeArchive(bytes, { componentName: "demo" });
      expect(problems).toEqual([]);
      expect(topDir).toBe("demo");
      const { entries } = await readTarGz(bytes);
      const hard = entries.find(
        (e) => e.path === "demo/hard.yaml" || e.path === "demo/compose.yaml",
      );
      expect(hard).toBeDefined();
      expect(entries.find((e) => e.path === "demo/alias.yaml")?.linkTarget).toBe("compose.yaml");
    });
  }

  it("reports GNU tar sparse files (old GNU and pax 1.0) as special files", async () => {
    const dir = join(scratch, "sparse-src", "demo");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "compose.yaml"), "services: {}\n");
    await writeFile(join(dir, "holes.img"), "");
    await truncate(join(dir, "holes.img"), 64 * 1024 * 1024);
    for (const format of ["gnu", "pax"]) {
      const file = join(scratch, `sparse-${format}.tgz`);
      execFileSync("tar", [
        "-S",
        `--format=${format}`,
        "-C",
        join(dir, ".."),
        "-czf",
        file,
        "demo",
      ]);
      const { problems } = await validateComposeArchive(await readFile(file));
      expect(
        problems.map((p) => `${p.rule} ${p.pointer}`),
        format,
      ).toEqual(["archive.special-file archive:demo/holes.img"]);
      const small = await validateComposeArchive(await readFile(file), {
        maxUnpackedBytes: 1024 * 1024,
      });
      expect(
        small.problems.map((p) => p.rule),
        format,
      ).toEqual(["archive.size-limit"]);
    }
  });

  it("GNU tar lists and extracts what packComposeArchive writes", async () => {
    const bytes = await packComposeArchive(project);
    const file = join(scratch, "ours.tgz");
    await writeFile(file, bytes);
    const listing = execFileSync("tar", ["-tvzf", file], { encoding: "utf8" });
    expect(listing).toContain("demo/compose.yaml");
    expect(listing).toContain("demo/alias.yaml -> compose.yaml");
    expect(listing).toMatch(/0\/0 .* 1970-01-01 00:00 demo\/compose\.yaml/);
    const out = join(scratch, "gnu-out");
    await mkdir(out);
    execFileSync("tar", ["-xzf", file, "-C", out]);
    const longFile = join(out, "demo", "d".repeat(120), "f".repeat(120));
    expect(await readFile(longFile, "utf8")).toBe("long\n");
  });
});
