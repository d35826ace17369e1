import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ARCHIVE_RULES,
  ArchiveRejectedError,
  extractComposeArchive,
  packComposeArchive,
  type TarEntrySpec,
  validateComposeArchive,
  writeTarGz,
} from "../src/package/archive/index.js";
import { hasErrors, type Problem } from "../src/problem.js";

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "margo-archive-compose-"));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function rulesAt(problems: Problem[]): string[] {
  return problems.map((p) => `${p.severity === "warning" ? "W " : ""}${p.rule} ${p.pointer}`);
}

async function validate(entries: TarEntrySpec[], componentName?: string) {
  return validateComposeArchive(
    await writeTarGz(entries),
    componentName ? { componentName } : undefined,
  );
}

describe("validateComposeArchive layout rules", () => {
  it("accepts a well-formed archive and returns compose.yaml and the top dir", async () => {
    const v = await validate(
      [
        { path: "app/", type: "dir" },
        { path: "app/compose.yaml", content: "services:\n  a:\n    image: x\n" },
      ],
      "app",
    );
    expect(v.problems).toEqual([]);
    expect(v.topDir).toBe("app");
    expect(v.composeYaml).toContain("image: x");
  });

  it("reports two top directories, a root file and a top-dir name mismatch", async () => {
    const v = await validate(
      [
        { path: "app/compose.yaml", content: "services: {}\n" },
        { path: "other/x", content: "" },
        { path: "README", content: "" },
      ],
      "my-app",
    );
    expect(rulesAt(v.problems)).toEqual([
      "archive.single-top-dir archive:other/x",
      "archive.single-top-dir archive:README",
      "W archive.top-dir-name archive:app",
    ]);
  });

  it("names the wrong compose file that was found", async () => {
    const v = await validate([
      { path: "app/", type: "dir" },
      { path: "app/docker-compose.yml", content: "services: {}\n" },
    ]);
    expect(v.problems.map((p) => p.rule)).toEqual(["archive.compose-file-name"]);
    expect(v.problems[0]?.message).toContain("docker-compose.yml");
    expect(v.composeYaml).toBeUndefined();
  });

  it("refuses a compose.yaml that is a symlink or sits only in a subdirectory", async () => {
    const link = await validate([
      { path: "app/real.yaml", content: "services: {}\n" },
      { path: "app/compose.yaml", type: "symlink", linkTarget: "real.yaml" },
    ]);
    expect(link.problems.map((p) => p.rule)).toEqual(["archive.compose-file-name"]);
    const nested = await validate([{ path: "app/sub/compose.yaml", content: "services: {}\n" }]);
    expect(nested.problems.map((p) => p.rule)).toEqual(["archive.compose-file-name"]);
  });

  it("lists ARCHIVE_RULES for every rule id it can emit, with text and source", () => {
    const ids = ARCHIVE_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of ARCHIVE_RULES) {
      expect(r.id).toMatch(/^(archive|compose)\.[a-z-]+$/);
      expect(r.text.length).toBeGreaterThan(10);
      expect(r.source.length).toBeGreaterThan(5);
    }
    expect(ids).toContain("archive.link-escape");
    expect(ids).toContain("compose.bind-source-included");
  });
});

describe("compose.yaml content rules", () => {
  const compose = `
services:
  web:
    image: busybox
    env_file:
      - ./env/web.env
      - env/missing.env
      - path: ./env/optional.env
        required: false
      - /etc/host.env
    volumes:
      - ./data:/data
      - ./conf/app.conf:/etc/app.conf:ro
      - named:/var/lib/named
      - ./not-shipped:/x
      - type: bind
        source: ./static
        target: /static
      - type: volume
        source: cache
        target: /cache
  worker:
    image: busybox
    env_file: worker.env
configs:
  good:
    file: ./conf/good.conf
  missing:
    file: ./conf/missing.conf
  inline:
    content: hello
secrets:
  token:
    file: ./secrets/token.txt
  external:
    file: ./not-here.txt
volumes:
  named: {}
  cache: {}
`;
  const files: TarEntrySpec[] = [
    { path: "app/", type: "dir" },
    { path: "app/compose.yaml", content: compose },
    { path: "app/env/web.env", content: "A=1\n" },
    { path: "app/conf/good.conf", content: "x" },
    { path: "app/conf/app.conf", content: "bind me" },
    { path: "app/data/db", content: "bind me" },
    { path: "app/static/", type: "dir" },
    { path: "app/secrets/token.txt", content: "s3cr3t" },
  ];

  it("fires every compose.* rule with a pointer into compose.yaml", async () => {
    const v = await validate(files);
    expect(rulesAt(v.problems).sort()).toEqual(
      [
        "compose.env-file-missing compose.yaml#/services/web/env_file/1",
        "W compose.env-file-missing compose.yaml#/services/web/env_file/2/path",
        "compose.env-file-missing compose.yaml#/services/web/env_file/3",
        "compose.env-file-missing compose.yaml#/services/worker/env_file",
        "compose.bind-source-included compose.yaml#/services/web/volumes/0",
        "compose.bind-source-included compose.yaml#/services/web/volumes/1",
        "compose.bind-source-included compose.yaml#/services/web/volumes/4/source",
        "compose.config-file-missing compose.yaml#/configs/missing/file",
        "compose.secret-file-included compose.yaml#/secrets/token/file",
      ].sort(),
    );
  });

  it("reports a YAML syntax error and a non-mapping document", async () => {
    const bad = await validate([
      { path: "app/compose.yaml", content: "services:\n  web: [unclosed\n" },
    ]);
    expect(bad.problems.map((p) => p.rule)).toContain("compose.yaml-syntax");
    expect(bad.problems[0]?.pointer).toBe("compose.yaml#");
    const scalar = await validate([{ path: "app/compose.yaml", content: "just a string\n" }]);
    expect(scalar.problems.map((p) => p.rule)).toEqual(["compose.yaml-syntax"]);
  });

  it("counts an env file reached through an internal symlink as included", async () => {
    const v = await validate([
      { path: "app/compose.yaml", content: "services:\n  a:\n    env_file: link.env\n" },
      { path: "app/real.env", content: "A=1\n" },
      { path: "app/link.env", type: "symlink", linkTarget: "real.env" },
    ]);
    expect(v.problems).toEqual([]);
  });
});

describe("extraction of a valid archive", () => {
  it("is byte-exact, keeps internal links and returns the project root", async () => {
    const binary = randomBytes(300_000);
    const long = `app/${"d".repeat(120)}/${"f".repeat(120)}.txt`;
    const bytes = await writeTarGz([
      { path: "app/", type: "dir" },
      { path: "app/compose.yaml", content: "services:\n  a:\n    env_file: .env\n" },
      { path: "app/.env", content: "KEY=value\n" },
      { path: "app/bin/run.sh", content: "#!/bin/sh\n", mode: 0o775 },
      { path: "app/data.bin", content: binary },
      { path: "app/copy.bin", type: "hardlink", linkTarget: "app/data.bin" },
      { path: "app/current", type: "symlink", linkTarget: "bin/run.sh" },
      { path: long, content: "long name" },
      { path: `app/${"g".repeat(150)}`, content: "gnu long name", longNames: "gnu" },
      { path: "app/empty/", type: "dir", mode: 0o700 },
    ]);
    const target = join(scratch, "valid");
    const { problems, root } = await extractComposeArchive(bytes, target);
    expect(problems).toEqual([]);
    expect(root).toBe(join(target, "app"));
    expect(sha256(await readFile(join(root, "data.bin")))).toBe(sha256(binary));
    expect(sha256(await readFile(join(root, "copy.bin")))).toBe(sha256(binary));
    expect((await lstat(join(root, "copy.bin"))).nlink).toBe(1); // a copy, not a link
    expect(await readFile(join(root, ".env"), "utf8")).toBe("KEY=value\n");
    expect(await readlink(join(root, "current"))).toBe("bin/run.sh");
    expect((await lstat(join(root, "bin/run.sh"))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(root, "empty"))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(target, long), "utf8")).toBe("long name");
    expect(await readFile(join(root, "g".repeat(150)), "utf8")).toBe("gnu long name");
    expect(await readdir(target)).toEqual(["app"]);
  });

  it("hard-link copies count against the unpacked size limit", async () => {
    const entries: TarEntrySpec[] = [
      { path: "app/compose.yaml", content: "services: {}\n" },
      { path: "app/blob", content: new Uint8Array(512 * 1024) },
    ];
    for (let i = 0; i < 10; i++) {
      entries.push({ path: `app/copy${i}`, type: "hardlink", linkTarget: "app/blob" });
    }
    const v = await validateComposeArchive(await writeTarGz(entries), {
      maxUnpackedBytes: 4 * 1024 * 1024,
    });
    // 13 B + blob 0.5 MiB + 7 copies of 0.5 MiB passes 4 MiB at the seventh copy (copy6).
    expect(v.problems.map((p) => `${p.rule} ${p.pointer}`)).toEqual([
      "archive.size-limit archive:app/copy6",
    ]);
  });
});

describe("packComposeArchive", () => {
  async function makeProject(name: string): Promise<string> {
    const dir = join(scratch, name);
    await mkdir(join(dir, "conf", "nested"), { recursive: true });
    await writeFile(join(dir, "compose.yaml"), "services:\n  a:\n    image: busybox\n");
    await writeFile(join(dir, "conf", "app.conf"), "x=1\n");
    await writeFile(join(dir, "conf", "nested", "b.txt"), randomBytes(1000));
    await writeFile(join(dir, "start.sh"), "#!/bin/sh\n");
    await chmod(join(dir, "start.sh"), 0o4775);
    await symlink("conf/app.conf", join(dir, "app.conf"));
    return dir;
  }

  it("gives the same bytes twice and after touching mtimes, and differs when content does", async () => {
    const dir = await makeProject("proj");
    const first = await packComposeArchive(dir, { topDir: "my-app" });
    const second = await packComposeArchive(dir, { topDir: "my-app" });
    expect(sha256(second)).toBe(sha256(first));
    const when = new Date("2001-02-03T04:05:06Z");
    for (const p of ["compose.yaml", "conf", "conf/app.conf", "start.sh", "."]) {
      await utimes(join(dir, p), when, when);
    }
    await chmod(join(dir, "conf", "app.conf"), 0o600); // not executable: still 0644 in the archive
    expect(sha256(await packComposeArchive(dir, { topDir: "my-app" }))).toBe(sha256(first));
    expect(first[9]).toBe(0xff); // fixed OS byte
    expect([...first.subarray(4, 8)]).toEqual([0, 0, 0, 0]); // no gzip mtime
    await writeFile(join(dir, "conf", "app.conf"), "x=2\n");
    expect(sha256(await packComposeArchive(dir, { topDir: "my-app" }))).not.toBe(sha256(first));
  });

  it("round-trips through validate and extract with normalised modes", async () => {
    const dir = await makeProject("roundtrip");
    const bytes = await packComposeArchive(dir);
    const v = await validateComposeArchive(bytes, { componentName: "roundtrip" });
    expect(v.problems).toEqual([]);
    expect(v.topDir).toBe("roundtrip");
    const { root } = await extractComposeArchive(bytes, join(scratch, "roundtrip-out"));
    expect(await readFile(join(root, "conf/nested/b.txt"))).toEqual(
      await readFile(join(dir, "conf/nested/b.txt")),
    );
    expect((await lstat(join(root, "start.sh"))).mode & 0o7777).toBe(0o755);
    expect(await readlink(join(root, "app.conf"))).toBe("conf/app.conf");
  });

  it("refuses a directory with a symlink leaving it", async () => {
    const dir = await makeProject("escaping");
    await symlink("../../etc", join(dir, "conf", "escape"));
    const err = await packComposeArchive(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveRejectedError);
    expect((err as ArchiveRejectedError).problems.map((p) => `${p.rule} ${p.pointer}`)).toEqual([
      "archive.link-escape archive:escaping/conf/escape",
    ]);
    expect(hasErrors((err as ArchiveRejectedError).problems)).toBe(true);
  });
});
