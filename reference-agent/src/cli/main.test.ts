import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliIo, EXIT } from "./exit.js";
import { runCli } from "./main.js";

const root = mkdtempSync(join(tmpdir(), "margo-agent-main-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function capture(): CliIo & { out_: string; err_: string } {
  const io = {
    out_: "",
    err_: "",
    out(t: string) {
      io.out_ += t;
    },
    err(t: string) {
      io.err_ += t;
    },
  };
  return io;
}

const BASE = [
  "--device-id",
  "edge-1",
  "--wfm-url",
  "https://127.0.0.1:9443",
  "--identity-dir",
  "/id",
];

describe("runCli exit codes", () => {
  it("usage and configuration errors are 2 and name the option or config key", async () => {
    const cases: Array<[string[], string]> = [
      [["init", ...BASE], "--state-dir"],
      [["init", "--state-dir", join(root, "a"), ...BASE, "--watch"], "--grpc-address"],
      [["init", "--state-dir", join(root, "b"), ...BASE, "--poll-ms", "fast"], "--poll-ms"],
      [["init", "--state-dir", join(root, "c"), ...BASE, "--poll-ms", "10"], "polling.periodMs"],
      [
        ["init", "--state-dir", join(root, "d"), ...BASE, "--driver-port", "70000"],
        "--driver-port",
      ],
      [
        ["init", "--state-dir", join(root, "e"), ...BASE, "--grpc-address", "nohost"],
        "--grpc-address",
      ],
      [
        [
          "init",
          "--state-dir",
          join(root, "f"),
          ...BASE,
          "--bundle-url",
          "https://a",
          "--discovery-url",
          "https://b",
        ],
        "--discovery-url",
      ],
      [
        ["init", "--state-dir", join(root, "g"), ...BASE, "--bundle-url", "http://a"],
        "trust.bundleUrl",
      ],
      [
        [
          "init",
          "--state-dir",
          join(root, "h"),
          "--device-id",
          "e",
          "--wfm-url",
          "http://h:1",
          "--identity-dir",
          "/i",
        ],
        "wfm.url",
      ],
      [["init", "--nope"], "--nope"],
      [["init", "positional"], "positional"],
      [["frobnicate"], "unknown command"],
      [["run", "--config", join(root, "missing.json")], "missing.json"],
      [["status", "--config", join(root, "missing.json")], "missing.json"],
      [["status", "--errors", "-1", "--config", "x"], "--errors"],
    ];
    for (const [args, mention] of cases) {
      const io = capture();
      const code = await runCli(args, io);
      expect({ args, code }).toEqual({ args, code: EXIT.usage });
      expect(io.err_).toContain(mention);
    }
  });

  it("--help is 0 for every command and the overview; no command at all is 2", async () => {
    for (const args of [
      ["--help"],
      ["help"],
      ["init", "--help"],
      ["run", "--help"],
      ["status", "--help"],
    ]) {
      const io = capture();
      expect(await runCli(args, io)).toBe(EXIT.ok);
      expect(io.out_).toContain("margo-agent");
    }
    const io = capture();
    expect(await runCli([], io)).toBe(EXIT.usage);
    expect(io.out_).toContain("Exit codes");
  });
});
