import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTarGz } from "@margo/proto/package";
import { describe, expect, it } from "vitest";
import { buildBundle, bundleEntryName, sha256Digest } from "./bundle.js";

const A = {
  name: bundleEntryName("b1a2c3d4-0000-4000-8000-000000000001"),
  bytes: Buffer.from("id: a\n"),
};
const B = {
  name: bundleEntryName("0a2c3d4e-0000-4000-8000-000000000002"),
  bytes: Buffer.alloc(700, 0x61), // more than one block, to exercise padding
};

describe("buildBundle", () => {
  it("item 45: entries sit at the archive root, one regular 0644 file per YAML, bytes exact", async () => {
    const { entries, problems } = await readTarGz(buildBundle([A, B]));
    expect(problems).toEqual([]);
    expect(entries.map((e) => [e.path, e.type, e.mode, e.size])).toEqual([
      [B.name, "file", 0o644, 700],
      [A.name, "file", 0o644, 6],
    ]);
    expect(Buffer.from(entries[1]?.content ?? []).equals(A.bytes)).toBe(true);
    expect(Buffer.from(entries[0]?.content ?? []).equals(B.bytes)).toBe(true);
  });

  it("same content gives the same bytes whatever the input order (same digest)", () => {
    const one = buildBundle([A, B]);
    const two = buildBundle([B, A]);
    expect(sha256Digest(one)).toBe(sha256Digest(two));
    expect(sha256Digest(buildBundle([A]))).not.toBe(sha256Digest(one));
    // gzip header: mtime 0 and OS 255, so the host never shows in the digest.
    expect([...one.subarray(4, 8)]).toEqual([0, 0, 0, 0]);
    expect(one[9]).toBe(0xff);
  });

  it("GNU tar reads it too (an independent reader), with mtime 0 and uid/gid 0", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bundle-"));
    try {
      const file = join(dir, "b.tar.gz");
      await writeFile(file, buildBundle([A]));
      const listing = execFileSync("tar", ["--numeric-owner", "-tvzf", file], {
        encoding: "utf8",
        env: { ...process.env, TZ: "UTC" },
      });
      expect(listing).toMatch(
        /^-rw-r--r-- 0\/0 +6 1970-01-01 00:00 b1a2c3d4-0000-4000-8000-000000000001\.yaml\n$/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses duplicate names (a caller bug, never a silently shadowed file)", () => {
    expect(() => buildBundle([A, A])).toThrow(/duplicate/);
  });
});
