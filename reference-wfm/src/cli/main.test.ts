import { describe, expect, it } from "vitest";
import { EXIT } from "./errors.js";
import { COMMANDS, runCli } from "./main.js";
import type { CliIo } from "./output.js";

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe("margo-wfm argument handling", () => {
  it("prints --help for every command and exits 0, naming every option and the exit codes", async () => {
    for (const spec of COMMANDS) {
      const io = capture();
      expect(await runCli([...spec.path, "--help"], io, {})).toBe(EXIT.ok);
      const text = io.stdout.join("\n");
      expect(text).toContain(`Usage: margo-wfm ${spec.path.join(" ")}`);
      for (const opt of Object.keys(spec.options ?? {})) expect(text).toContain(`--${opt}`);
      expect(text).toContain("Exit codes:");
    }
  });

  it("prints the overview for --help and for a bare group", async () => {
    const io = capture();
    expect(await runCli(["--help"], io, {})).toBe(EXIT.ok);
    expect(io.stdout.join("\n")).toContain("deployments list");
    const group = capture();
    expect(await runCli(["client"], group, {})).toBe(EXIT.usage);
    expect(group.stdout.join("\n")).toContain("client add <client-id>");
    expect(group.stdout.join("\n")).not.toContain("app register");
  });

  it("exits 2 naming the problem for unknown commands, unknown options, missing arguments", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["client", "list", "--data-dir", "/x", "--bogus"], /--bogus/],
      [["client", "add", "c1", "--data-dir", "/x"], /needs --out DIR/],
      [["client", "remove", "--data-dir", "/x"], /expects <client-id>, got none/],
      [["app", "list", "extra", "--data-dir", "/x"], /takes no arguments, got "extra"/],
      [["deploy", "app", "--data-dir", "/x", "--device", "d"], /needs --client C/],
      [["client", "list"], /needs --data-dir DIR/],
      [["init", "--data-dir", "/x", "--trust-domain", "Bad/TD", "--wfm-id", "w"], /trust domain/],
      [
        [
          "init",
          "--data-dir",
          "/x",
          "--trust-domain",
          "t.org",
          "--wfm-id",
          "w",
          "--grpc-port",
          "x",
        ],
        /not a port number/,
      ],
      [
        ["deploy", "a", "--data-dir", "/x", "--client", "c", "--device", "d", "--param", "oops"],
        /key=value/,
      ],
    ];
    for (const [argv, message] of cases) {
      const io = capture();
      const code = await runCli(argv, io, {});
      expect({ argv, code }).toEqual({ argv, code: EXIT.usage });
      expect(io.stderr.join("\n")).toMatch(message);
    }
  });

  it("takes the data dir from MARGO_WFM_DATA_DIR and exits 3 when it is not initialised", async () => {
    const io = capture();
    const code = await runCli(["client", "list"], io, { MARGO_WFM_DATA_DIR: "/nonexistent/margo" });
    expect(code).toBe(EXIT.unavailable);
    expect(io.stderr.join("\n")).toMatch(/\/nonexistent\/margo\/wfm\.json.*margo-wfm init/);
  });
});
