import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeTarGz } from "./archive/index.js";
import { PACKAGE_RULES, validatePackageDir } from "./package-dir.js";

const MARGO = `apiVersion: v1
id: pkg-test
metadata:
  name: Package test
  version: 1.0.0
  catalog:
    application:
      icon: ./resources/icon.png
    organization:
      - name: Test
deploymentProfiles:
  - type: compose
    id: p1
    components:
      - name: web
        properties:
          repository: oci://127.0.0.1:5000/t/web
          revision: 1.0.0
`;
const COMPOSE = "services:\n  web:\n    image: busybox\n";

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function pkg(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "margo-pkg-"));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

const errors = (r: { problems: Array<{ rule: string; severity: string }> }) =>
  r.problems.filter((p) => p.severity === "error").map((p) => p.rule);

describe("validatePackageDir", () => {
  it("accepts a spec-form package (no components/) with its resources", async () => {
    const r = await validatePackageDir(
      await pkg({ "margo.yaml": MARGO, "resources/icon.png": "png" }),
    );
    expect(r.problems).toEqual([]);
    expect(r.description?.id).toBe("pkg-test");
    expect(r.descriptionText).toBe(MARGO);
  });

  it("requires the description to be named margo.yaml", async () => {
    const r = await validatePackageDir(await pkg({ "margo.yml": MARGO }));
    expect(errors(r)).toEqual(["package.missing-description"]);
    expect(r.problems[0]?.message).toContain("margo.yml");
    const dir = await pkg({ "resources/icon.png": "png" });
    await mkdir(join(dir, "margo.yaml"));
    expect(errors(await validatePackageDir(dir))).toEqual(["package.missing-description"]);
    expect(errors(await validatePackageDir(join(dir, "does-not-exist")))).toEqual([
      "package.missing-description",
    ]);
  });

  it("rejects resources outside the package, also through a symlink", async () => {
    const escaping = MARGO.replace("./resources/icon.png", "../icon.png");
    expect(errors(await validatePackageDir(await pkg({ "margo.yaml": escaping })))).toEqual([
      "package.resource-path",
    ]);
    const dir = await pkg({ "margo.yaml": MARGO });
    await mkdir(join(dir, "resources"));
    await symlink("/etc/hostname", join(dir, "resources", "icon.png"));
    expect(errors(await validatePackageDir(dir))).toEqual(["package.resource-missing"]);
  });

  it("reports description problems with a margo.yaml# pointer and stops there", async () => {
    const r = await validatePackageDir(
      await pkg({ "margo.yaml": MARGO.replace("id: pkg-test", "id: Pkg"), "components/x": "" }),
    );
    expect(r.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["description.id-pattern", "margo.yaml#/id"],
    ]);
    expect(r.description).toBeUndefined();
  });

  it("packs compose sources and keeps the archive rules' ids", async () => {
    const ok = await pkg({
      "margo.yaml": MARGO,
      "resources/icon.png": "png",
      "components/web/compose.yaml": COMPOSE,
    });
    expect(await validatePackageDir(ok)).toMatchObject({ problems: [] });
    const dir = await pkg({ "margo.yaml": MARGO, "resources/icon.png": "png" });
    await mkdir(join(dir, "components", "web"), { recursive: true });
    await writeFile(join(dir, "components", "web", "compose.yml"), COMPOSE);
    const r = await validatePackageDir(dir);
    expect(errors(r)).toEqual(["archive.compose-file-name"]);
    expect(r.problems[0]?.pointer.startsWith("components/web:")).toBe(true);
  });

  it("takes a component's archive from the componentArchive hook", async () => {
    const dir = await pkg({ "margo.yaml": MARGO, "resources/icon.png": "png" });
    const bytes = await writeTarGz([
      { path: "web/compose.yaml", content: COMPOSE },
      { path: "web/evil", type: "symlink", linkTarget: "/etc" },
    ]);
    const r = await validatePackageDir(dir, { componentArchive: async () => bytes });
    expect(errors(r)).toEqual(["archive.link-escape"]);
  });

  it("names every package rule it can emit", () => {
    expect(PACKAGE_RULES.map((r) => r.id).sort()).toEqual([
      "package.component-source-missing",
      "package.missing-description",
      "package.resource-missing",
      "package.resource-path",
      "package.single-description",
    ]);
  });
});
