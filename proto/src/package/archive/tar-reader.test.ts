import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { resolveInside, splitArchivePath } from "./archive-paths.js";
import {
  BLOCK,
  checksumOf,
  encodePaxRecords,
  FIELD,
  parsePaxRecords,
  readNumber,
  writeChecksum,
  writeNumber,
} from "./tar-format.js";
import { readTarGz } from "./tar-reader.js";
import { writeTarGz } from "./tar-writer.js";

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe("tar header fields", () => {
  it("round-trips octal and base-256 numbers", () => {
    const block = new Uint8Array(BLOCK);
    writeNumber(block, FIELD.size, 0o7777777);
    expect(readNumber(block, FIELD.size)).toBe(0o7777777);
    writeNumber(block, FIELD.size, 2 ** 40); // does not fit 11 octal digits: base-256
    expect(block[FIELD.size[0]]).toBe(0x80);
    expect(readNumber(block, FIELD.size)).toBe(2 ** 40);
    block.set(new TextEncoder().encode("12x45678901"), FIELD.size[0]);
    expect(readNumber(block, FIELD.size)).toBeUndefined();
  });

  it("writes a checksum that verifies", () => {
    const block = new Uint8Array(BLOCK);
    block.set(new TextEncoder().encode("name"), 0);
    writeChecksum(block);
    expect(readNumber(block, FIELD.checksum)).toBe(checksumOf(block).unsigned);
  });

  it("encodes pax records whose length counts its own digits", () => {
    for (const value of ["a", "x".repeat(5), "y".repeat(95), "z".repeat(994)]) {
      const body = encodePaxRecords([["path", value]]);
      expect(parsePaxRecords(body).get("path")).toBe(value);
    }
    expect(() => parsePaxRecords(new TextEncoder().encode("99 path=x\n"))).toThrow();
  });
});

describe("readTarGz", () => {
  it("reads pax and GNU long names and link targets from a chunked stream", async () => {
    const longPath = `top/${"p".repeat(300)}`;
    const longLink = `../${"l".repeat(200)}`;
    const bytes = await writeTarGz([
      { path: longPath, content: "pax" },
      { path: `top/${"g".repeat(200)}`, content: "gnu", longNames: "gnu" },
      { path: "top/link", type: "symlink", linkTarget: longLink, longNames: "gnu" },
      { path: "top/plink", type: "symlink", linkTarget: longLink },
    ]);
    const { entries, problems } = await readTarGz(chunked(bytes, 7));
    expect(problems).toEqual([]);
    expect(entries.map((e) => e.path)).toEqual([
      longPath,
      `top/${"g".repeat(200)}`,
      "top/link",
      "top/plink",
    ]);
    expect(new TextDecoder().decode(entries[1]?.content)).toBe("gnu");
    expect(entries[2]?.linkTarget).toBe(longLink);
    expect(entries[3]?.linkTarget).toBe(longLink);
  });

  it("applies path limits and reports over-long paths without stopping", async () => {
    const bytes = await writeTarGz([
      { path: `top/${"a".repeat(200)}`, content: "" },
      { path: "top/ok", content: "" },
    ]);
    const { entries, problems } = await readTarGz(bytes, { maxPathLength: 100 });
    expect(entries).toHaveLength(2);
    expect(problems.map((p) => p.rule)).toEqual(["archive.path-length"]);
  });

  it("stops at the per-entry limit before reading the content", async () => {
    const bytes = await writeTarGz([
      { path: "top/small", content: "x" },
      { path: "top/big", size: 10_000 },
      { path: "top/after", content: "y" },
    ]);
    const { entries, problems } = await readTarGz(bytes, { maxEntryBytes: 4096 });
    expect(entries.map((e) => e.path)).toEqual(["top/small"]);
    expect(problems.map((p) => `${p.rule} ${p.pointer}`)).toEqual([
      "archive.size-limit archive:top/big",
    ]);
  });

  it("reports a missing end marker and data after it as corrupt", async () => {
    const tar = gunzipSync(await writeTarGz([{ path: "top/a", content: "a" }]));
    const noEnd = gzipSync(tar.subarray(0, 2 * BLOCK));
    expect((await readTarGz(noEnd)).problems[0]?.message).toMatch(/end-of-archive/);
    const trailing = new Uint8Array(tar.length + BLOCK);
    trailing.set(tar);
    trailing[tar.length + 3] = 1;
    expect((await readTarGz(gzipSync(trailing))).problems.map((p) => p.rule)).toEqual([
      "archive.corrupt",
    ]);
  });

  it("reports an unknown typeflag as a special file", async () => {
    const tar = new Uint8Array(gunzipSync(await writeTarGz([{ path: "top/a", content: "a" }])));
    tar[FIELD.typeflag[0]] = "Z".charCodeAt(0);
    writeChecksum(tar.subarray(0, BLOCK));
    const { problems } = await readTarGz(gzipSync(tar));
    expect(problems.map((p) => p.rule)).toEqual(["archive.special-file"]);
    expect(problems[0]?.message).toContain('"Z"');
  });
});

describe("archive paths", () => {
  it("normalises backslashes and ./ before judging", () => {
    expect(splitArchivePath("top\\..\\x")).toMatchObject({ traversal: true, absolute: false });
    expect(splitArchivePath("./top/./a/")).toMatchObject({
      segments: ["top", "a"],
      traversal: false,
    });
    expect(splitArchivePath("C:/x").absolute).toBe(true);
    expect(splitArchivePath("\\x").absolute).toBe(true);
  });

  it("resolves through archive symlinks and refuses leaving the top directory", () => {
    const links = new Map([
      ["top/x", "."],
      ["top/deep", "a/b/c"],
      ["top/loop", "loop"],
    ]);
    expect(resolveInside(["top"], "deep/..", links)).toEqual(["top", "a", "b"]);
    expect(resolveInside(["top"], "x/..", links)).toBeUndefined();
    expect(resolveInside(["top", "a"], "../b", links)).toEqual(["top", "b"]);
    expect(resolveInside(["top"], "/etc", links)).toBeUndefined();
    expect(resolveInside(["top"], "loop", links)).toBeUndefined();
  });
});
