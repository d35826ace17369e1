import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../bin/margo-conformance");

// The shim and the entry-point detection: if main.ts failed to see it was run as a program it
// would exit 0 having done nothing, which CI would read as "conformant".
describe("bin/margo-conformance", () => {
  it("prints help with exit 0", () => {
    const r = spawnSync(BIN, ["--help"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Exit codes:");
  });
  it("exits 4 with a named error when there is nothing to run", () => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("MARGO_CONFORMANCE_")),
    );
    const r = spawnSync(BIN, ["run", "--out", "/tmp/unused-margo-conformance-report"], {
      encoding: "utf8",
      timeout: 60_000,
      env,
      cwd: "/tmp",
    });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain("UsageError: no suite to run");
  });
});
