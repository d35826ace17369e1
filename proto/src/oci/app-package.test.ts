import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pushApplicationPackage, readPackageDir, UnsafePackagePathError } from "./app-package.js";
import { type FetchLike, OciClient } from "./client.js";

/**
 * A package directory is often someone else's (a fixture, a download): its catalog must not make
 * the publisher read, and push, files outside it. These tests need no registry: a refused package
 * never gets as far as a request.
 */

const SECRET = "top secret, outside the package";

function description(icon: string): string {
  return [
    "apiVersion: margo.org/v1-alpha1",
    "kind: ApplicationDescription",
    "metadata:",
    "  id: t",
    "  name: T",
    "  version: 1.0.0",
    "  catalog:",
    "    application:",
    `      icon: ${JSON.stringify(icon)}`,
    "",
  ].join("\n");
}

/** A client whose every request is recorded and fails, so a test sees whether anything was sent. */
function offlineClient(): { client: OciClient; calls: string[] } {
  const calls: string[] = [];
  const fetch: FetchLike = async (input) => {
    calls.push(input);
    throw new Error("no request expected");
  };
  return { client: new OciClient({ registry: "127.0.0.1:9", fetch }), calls };
}

describe("package paths stay inside the package", () => {
  let root: string;
  let pkg: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "margo-pkg-"));
    pkg = join(root, "pkg");
    await mkdir(join(pkg, "resources"), { recursive: true });
    await writeFile(join(root, "secret.txt"), SECRET);
    await writeFile(join(pkg, "resources", "icon.png"), "png");
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const refused = async (icon: string, reason: RegExp) => {
    await writeFile(join(pkg, "margo.yaml"), description(icon));
    const err = await readPackageDir(pkg).catch((e: unknown) => e);
    expect(err, icon).toBeInstanceOf(UnsafePackagePathError);
    expect((err as UnsafePackagePathError).path).toBe(icon.replace(/^\.\//, ""));
    expect((err as Error).message).toMatch(reason);
    const { client, calls } = offlineClient();
    await expect(pushApplicationPackage(client, "margo-test/x", pkg)).rejects.toBeInstanceOf(
      UnsafePackagePathError,
    );
    expect(calls).toEqual([]);
  };

  it("reads a catalog resource inside the package, ./ or not, through an inner symlink", async () => {
    await writeFile(join(pkg, "margo.yaml"), description("./resources/icon.png"));
    const files = await readPackageDir(pkg);
    expect(files.map((f) => [f.path, f.kind])).toEqual([
      ["margo.yaml", "description"],
      ["resources/icon.png", "icon"],
    ]);
    await symlink("icon.png", join(pkg, "resources", "alias.png"));
    await writeFile(join(pkg, "margo.yaml"), description("resources/alias.png"));
    const viaLink = await readPackageDir(pkg);
    expect(new TextDecoder().decode(viaLink[1]?.bytes)).toBe("png");
  });

  it("refuses a ../ path", async () => {
    await refused("../secret.txt", /\.\./);
    await refused("resources/../../secret.txt", /\.\./);
  });

  it("refuses an absolute path", async () => {
    await refused(join(root, "secret.txt"), /absolute|relative/);
  });

  it("refuses a symlink that leaves the package", async () => {
    await symlink(join(root, "secret.txt"), join(pkg, "resources", "escape.png"));
    await refused("resources/escape.png", /outside/);
    await symlink("..", join(pkg, "up"));
    await refused("up/secret.txt", /outside/);
  });

  it("refuses a margo.yaml that is a symlink out of the package", async () => {
    await writeFile(join(root, "other.yaml"), description("resources/icon.png"));
    await symlink(join(root, "other.yaml"), join(pkg, "margo.yaml"));
    await expect(readPackageDir(pkg)).rejects.toBeInstanceOf(UnsafePackagePathError);
  });

  it("refuses unsafe paths in files handed to pushApplicationPackage", async () => {
    const { client, calls } = offlineClient();
    const files = [
      { path: "margo.yaml", bytes: new TextEncoder().encode(description("../secret.txt")) },
      { path: "../secret.txt", bytes: new TextEncoder().encode(SECRET) },
    ];
    await expect(pushApplicationPackage(client, "margo-test/x", files)).rejects.toBeInstanceOf(
      UnsafePackagePathError,
    );
    expect(calls).toEqual([]);
  });
});
