import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KindError, kindAvailable, startKindCluster } from "./kind.js";

const dirs: string[] = [];
function binDir(...names: string[]): string {
  const d = mkdtempSync(join(tmpdir(), "kind-test-"));
  dirs.push(d);
  for (const n of names) {
    writeFileSync(join(d, n), "#!/bin/sh\nexit 0\n");
    chmodSync(join(d, n), 0o755);
  }
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("kindAvailable", () => {
  it("is ok when kind and helm are both on PATH", () => {
    expect(kindAvailable(binDir("kind", "helm"))).toEqual({ ok: true });
  });

  it("names what is missing", () => {
    const r = kindAvailable(binDir("kind"));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/^helm not on PATH/);
    const none = kindAvailable(binDir());
    expect(!none.ok && none.reason).toMatch(/^kind and helm not on PATH/);
  });

  it("ignores empty PATH entries (they would mean the working directory)", () => {
    expect(kindAvailable(`:${binDir()}:`).ok).toBe(false);
  });
});

describe("startKindCluster", () => {
  it.skipIf(kindAvailable().ok)(
    "refuses with the availability reason when kind is missing",
    async () => {
      await expect(startKindCluster({ name: "margo-x", workDir: binDir() })).rejects.toThrow(
        KindError,
      );
    },
  );
});
