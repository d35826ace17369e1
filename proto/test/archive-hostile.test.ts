import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ArchiveRejectedError,
  extractComposeArchive,
  readTarGz,
  type TarEntrySpec,
  validateComposeArchive,
  writeTarGz,
} from "../src/package/archive/index.js";
import type { Problem } from "../src/problem.js";

// Every hostile archive is thrown at the real extractor with a real filesystem around it. A
// sentinel tree beside the target is snapshotted before and after: any byte written outside the
// target (or any change to what is there) fails the test.

const COMPOSE = "services:\n  web:\n    image: busybox\n";

let parent: string;
let target: string;
let evilName: string;
let snapshotBefore: Map<string, string>;

async function snapshot(dir: string, skip: string, out = new Map<string, string>()) {
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    if (path === skip) continue;
    const st = await lstat(path);
    if (st.isDirectory()) {
      out.set(path, `dir ${st.mode.toString(8)}`);
      await snapshot(path, skip, out);
    } else if (st.isSymbolicLink()) {
      out.set(path, `link ${await readlink(path)}`);
    } else {
      const hash = createHash("sha256")
        .update(await readFile(path))
        .digest("hex");
      out.set(path, `file ${st.mode.toString(8)} ${st.size} ${hash}`);
    }
  }
  return out;
}

const passwdBefore = existsSync("/etc/passwd") ? await readFile("/etc/passwd") : undefined;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "margo-archive-hostile-"));
});

afterAll(async () => {
  await rm(parent, { recursive: true, force: true });
});

beforeEach(async () => {
  // A fresh sentinel layout per test: parent/{sentinel/..., target (absent)}.
  const round = randomBytes(4).toString("hex");
  const base = join(parent, round);
  await mkdir(join(base, "sentinel", "deep"), { recursive: true });
  await writeFile(join(base, "sentinel", "keep.txt"), "do not touch\n");
  await writeFile(join(base, "sentinel", "deep", "keep.bin"), randomBytes(64));
  target = join(base, "sentinel", "deep", "target");
  evilName = `evil-${round}`;
  snapshotBefore = await snapshot(parent, target);
});

/** assertNothingOutside checks the sentinel tree, /etc/passwd and the usual escape spots. */
async function assertNothingOutside(): Promise<void> {
  expect(await snapshot(parent, target)).toEqual(snapshotBefore);
  for (const spot of [
    join("/tmp", evilName),
    join(tmpdir(), evilName),
    join("/", evilName),
    join(parent, evilName),
  ]) {
    expect(existsSync(spot), spot).toBe(false);
  }
  if (passwdBefore) expect(await readFile("/etc/passwd")).toEqual(passwdBefore);
}

/** expectRejected extracts, expects refusal naming `rule`, and that nothing was written at all. */
async function expectRejected(bytes: Uint8Array, rule: string): Promise<Problem[]> {
  const err = await extractComposeArchive(bytes, target).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArchiveRejectedError);
  const problems = (err as ArchiveRejectedError).problems;
  expect(problems.map((p) => p.rule)).toContain(rule);
  expect(existsSync(target)).toBe(false);
  await assertNothingOutside();
  return problems;
}

function project(extra: TarEntrySpec[]): TarEntrySpec[] {
  return [{ path: "top/", type: "dir" }, { path: "top/compose.yaml", content: COMPOSE }, ...extra];
}

describe("hostile compose archives are refused or neutralised, nothing lands outside", () => {
  it("path traversal top/../../evil (also with backslashes and ./ spelling)", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: `top/../../${evilName}`, content: "pwned" },
          { path: `top\\..\\..\\${evilName}`, content: "pwned" },
          { path: `./top/./../../../${evilName}`, content: "pwned" },
        ]),
      ),
      "archive.path-traversal",
    );
    expect(problems.filter((p) => p.rule === "archive.path-traversal")).toHaveLength(3);
    expect(problems[0]?.pointer).toBe(`archive:top/../../${evilName}`);
  });

  it("absolute path /tmp/evil-<random>", async () => {
    const problems = await expectRejected(
      await writeTarGz(project([{ path: `/tmp/${evilName}`, content: "pwned" }])),
      "archive.absolute-path",
    );
    expect(problems.find((p) => p.rule === "archive.absolute-path")?.pointer).toBe(
      `archive:/tmp/${evilName}`,
    );
  });

  it("escaping symlink top/link -> ../../.. with a file written through it later", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: "top/link", type: "symlink", linkTarget: "../../.." },
          { path: `top/link/${evilName}`, content: "pwned" },
          { path: "top/abs", type: "symlink", linkTarget: "/etc" },
        ]),
      ),
      "archive.link-escape",
    );
    const rules = problems.map((p) => `${p.rule} ${p.pointer}`);
    expect(rules).toContain("archive.link-escape archive:top/link");
    expect(rules).toContain("archive.link-escape archive:top/abs");
    expect(rules).toContain(`archive.path-through-link archive:top/link/${evilName}`);
  });

  it("symlink chain that only escapes when links are followed (top/x -> ., top/y -> x/..)", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: "top/x", type: "symlink", linkTarget: "." },
          { path: "top/y", type: "symlink", linkTarget: "x/.." },
        ]),
      ),
      "archive.link-escape",
    );
    expect(problems.filter((p) => p.rule === "archive.link-escape").map((p) => p.pointer)).toEqual([
      "archive:top/y",
    ]);
  });

  it("hard links to /etc/passwd and to ../outside", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: "top/passwd", type: "hardlink", linkTarget: "/etc/passwd" },
          { path: "top/outside", type: "hardlink", linkTarget: "../outside" },
          { path: "top/sibling", type: "hardlink", linkTarget: "other/file" },
        ]),
      ),
      "archive.link-escape",
    );
    expect(problems.filter((p) => p.rule === "archive.link-escape")).toHaveLength(3);
  });

  it("setuid/setgid/sticky bits are dropped with a warning", async () => {
    const bytes = await writeTarGz(
      project([
        { path: "top/run.sh", content: "#!/bin/sh\necho hi\n", mode: 0o4755 },
        { path: "top/data.txt", content: "x", mode: 0o2644 },
        { path: "top/tmp/", type: "dir", mode: 0o1777 },
      ]),
    );
    const { problems, root } = await extractComposeArchive(bytes, target);
    expect(problems.filter((p) => p.rule === "archive.mode-bits")).toHaveLength(3);
    expect(problems.every((p) => p.severity === "warning")).toBe(true);
    expect((await lstat(join(root, "run.sh"))).mode & 0o7777).toBe(0o755);
    expect((await lstat(join(root, "data.txt"))).mode & 0o7777).toBe(0o644);
    expect((await lstat(join(root, "tmp"))).mode & 0o7777).toBe(0o755);
    await assertNothingOutside();
  });

  it("100k entries are refused quickly by the entry limit", async () => {
    const entries = function* (): Generator<TarEntrySpec> {
      yield* project([]);
      for (let i = 0; i < 100_000; i++) yield { path: `top/f${i}`, content: "" };
    };
    let t = performance.now();
    const bytes = await writeTarGz(entries(), { level: 1 });
    const written = performance.now() - t;
    t = performance.now();
    const problems = await expectRejected(bytes, "archive.entry-limit");
    const refused = performance.now() - t;
    console.log(
      `100k entries: wrote ${bytes.length} B in ${written.toFixed(0)} ms, refused in ${refused.toFixed(0)} ms`,
    );
    expect(problems.find((p) => p.rule === "archive.entry-limit")?.pointer).toBe(
      "archive:top/f9998",
    );
    expect(refused).toBeLessThan(5000);
  });

  it("a 1 GiB zero-filled file is refused by the size limit without inflating it", async () => {
    let t = performance.now();
    const bytes = await writeTarGz(project([{ path: "top/huge.bin", size: 1024 ** 3 }]), {
      level: 1,
    });
    const written = performance.now() - t;
    t = performance.now();
    await expectRejected(bytes, "archive.size-limit");
    const refused = performance.now() - t;
    console.log(
      `1 GiB zero file: wrote ${bytes.length} B in ${written.toFixed(0)} ms, refused in ${refused.toFixed(0)} ms`,
    );
    expect(refused).toBeLessThan(2000);
  });

  it("a 1 GiB GNU sparse file is refused by its real size", async () => {
    const t = performance.now();
    const bytes = await writeTarGz(
      project([{ path: "top/sparse", type: "gnu-sparse", size: 1024 ** 3 }]),
    );
    await expectRejected(bytes, "archive.size-limit");
    console.log(
      `1 GiB sparse: ${bytes.length} B, refused in ${(performance.now() - t).toFixed(0)} ms`,
    );
    // Under the limit a sparse entry is still refused, as a special file.
    const small = await writeTarGz(
      project([{ path: "top/sparse", type: "gnu-sparse", size: 4096 }]),
    );
    await expectRejected(small, "archive.special-file");
  });

  it("a gzip bomb (1 GiB of zeros in 1 MiB of gzip) stops after a bounded amount", async () => {
    const member = gzipSync(new Uint8Array(1 << 20), { level: 9 });
    const bomb = new Uint8Array(member.length * 1024);
    for (let i = 0; i < 1024; i++) bomb.set(member, i * member.length);
    const t = performance.now();
    await expectRejected(bomb, "archive.size-limit");
    console.log(
      `gzip bomb: ${bomb.length} B inflating to 1 GiB, refused in ${(performance.now() - t).toFixed(0)} ms`,
    );
    // A real tar whose one entry hides a bomb behind a modest header limit is refused as well.
    const inner = await writeTarGz(project([{ path: "top/zeros", size: 64 * 1024 ** 2 }]), {
      level: 1,
    });
    const err = await extractComposeArchive(inner, target, { maxUnpackedBytes: 1024 ** 2 }).catch(
      (e: unknown) => e,
    );
    expect((err as ArchiveRejectedError).problems.map((p) => p.rule)).toContain(
      "archive.size-limit",
    );
    await assertNothingOutside();
  });

  it("truncated and corrupt gzip, corrupt tar header checksum", async () => {
    const good = await writeTarGz(
      project([{ path: "top/data.bin", content: randomBytes(20_000) }]),
    );
    await expectRejected(good.subarray(0, good.length - 100), "archive.corrupt");
    await expectRejected(good.subarray(0, 30), "archive.corrupt");
    const flipped = new Uint8Array(good);
    flipped[Math.floor(flipped.length / 2)] = (flipped[Math.floor(flipped.length / 2)] ?? 0) ^ 0xff;
    await expectRejected(flipped, "archive.corrupt");
    await expectRejected(new TextEncoder().encode("not gzip at all"), "archive.corrupt");
    const tar = new Uint8Array(gunzipSync(good));
    tar[10] = 0x41; // inside the first header's name: checksum no longer matches
    const problems = await expectRejected(gzipSync(tar), "archive.corrupt");
    expect(problems.find((p) => p.rule === "archive.corrupt")?.message).toMatch(/checksum/);
  });

  it("fifo, character and block devices", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: "top/fifo", type: "fifo" },
          { path: "top/tty", type: "chardev" },
          { path: "top/disk", type: "blockdev" },
        ]),
      ),
      "archive.special-file",
    );
    expect(problems.filter((p) => p.rule === "archive.special-file").map((p) => p.pointer)).toEqual(
      ["archive:top/fifo", "archive:top/tty", "archive:top/disk"],
    );
  });

  it("duplicate paths and entries below files are refused (no overwrite tricks)", async () => {
    const problems = await expectRejected(
      await writeTarGz(
        project([
          { path: "top/compose.yaml", content: "services: {}\n" },
          { path: "top/file", content: "x" },
          { path: "top/file/child", content: "y" },
        ]),
      ),
      "archive.path-conflict",
    );
    expect(problems.filter((p) => p.rule === "archive.path-conflict")).toHaveLength(2);
  });

  it("a non-empty or symlinked target is refused before anything is written", async () => {
    const bytes = await writeTarGz(project([]));
    await mkdir(target);
    await writeFile(join(target, "existing"), "x");
    const err = await extractComposeArchive(bytes, target).catch((e: unknown) => e);
    expect((err as ArchiveRejectedError).problems[0]?.rule).toBe("archive.target-not-empty");
    expect(await readdir(target)).toEqual(["existing"]);
    await rm(target, { recursive: true });
    // A target that is a symlink (even to an empty directory) is refused as well.
    const elsewhere = join(parent, `${evilName}-dir`);
    await mkdir(elsewhere);
    await symlink(elsewhere, target);
    const viaLink = await extractComposeArchive(bytes, target).catch((e: unknown) => e);
    expect((viaLink as ArchiveRejectedError).problems[0]?.rule).toBe("archive.target-not-empty");
    expect(await readdir(elsewhere)).toEqual([]);
    await rm(target);
    await rm(elsewhere, { recursive: true });
    await assertNothingOutside();
  });

  it("the reader reports what node-tar would silently sanitise", async () => {
    const bytes = await writeTarGz([
      { path: "/abs", content: "a" },
      { path: "../up", content: "b" },
      { path: "link", type: "symlink", linkTarget: "/etc/passwd" },
    ]);
    const { entries, problems } = await readTarGz(bytes);
    expect(problems).toEqual([]);
    expect(entries.map((e) => [e.path, e.linkTarget])).toEqual([
      ["/abs", undefined],
      ["../up", undefined],
      ["link", "/etc/passwd"],
    ]);
    const v = await validateComposeArchive(bytes);
    expect(new Set(v.problems.map((p) => p.rule))).toEqual(
      new Set([
        "archive.absolute-path",
        "archive.path-traversal",
        "archive.single-top-dir",
        "archive.compose-file-name",
        "archive.link-escape",
      ]),
    );
  });
});
