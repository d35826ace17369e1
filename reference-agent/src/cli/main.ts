import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../config.js";
import { mutantBanner, unknownMutant } from "../mutants.js";
import { type CliIo, EXIT, type ExitCode, processIo, UsageError } from "./exit.js";

/**
 * `margo-agent`: the device agent's command line. `runCli` is the whole program minus process
 * exit, so tests can drive it in-process; the shim `reference-agent/bin/margo-agent` runs this
 * file with tsx. Each command is imported only when chosen: `run` is the long-lived agent and
 * must not carry what `status` needs, and the reverse.
 */
export const OVERVIEW = `margo-agent: the Margo 1.0.0-rc.3 reference device agent

Usage:
  margo-agent init   --state-dir D --device-id X --wfm-url U --identity-dir I [options]
  margo-agent run    [--config F]
  margo-agent status [--config F] [--json]
  margo-agent <command> --help

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 cannot reach what it needs.
`;

type Command = (argv: string[], io: CliIo) => Promise<ExitCode>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import("./init-command.js")).initCommand,
  run: async () => (await import("./run-command.js")).runCommand,
  status: async () => (await import("./status-command.js")).statusCommand,
};

/** Parse and run one command line; returns the exit code (never calls process.exit). */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<ExitCode> {
  const refused = unknownMutant();
  if (refused) {
    io.err(`margo-agent: refusing to start: ${refused}`);
    return EXIT.usage;
  }
  // A known mutant is honoured, but never silently (test-only; see mutants.ts).
  const banner = mutantBanner();
  if (banner) io.err(`margo-agent: ${banner}`);
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.out(OVERVIEW);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    io.err(`margo-agent: unknown command ${JSON.stringify(name)}\n\n${OVERVIEW}`);
    return EXIT.usage;
  }
  try {
    return await (await load())(rest, io);
  } catch (e) {
    return report(e, name, io);
  }
}

/** Map a failure to its exit code with one line naming what is wrong. */
function report(e: unknown, command: string, io: CliIo): ExitCode {
  const err = e as Error & { code?: string; key?: string };
  if (e instanceof UsageError) {
    io.err(`margo-agent ${command}: ${err.message} (see margo-agent ${command} --help)`);
    return EXIT.usage;
  }
  // node:util parseArgs: unknown option, missing value, unexpected positional.
  if (typeof err.code === "string" && err.code.startsWith("ERR_PARSE_ARGS_")) {
    io.err(`margo-agent ${command}: ${err.message} (see margo-agent ${command} --help)`);
    return EXIT.usage;
  }
  if (e instanceof ConfigError) {
    io.err(`margo-agent ${command}: configuration error: ${err.message}`);
    return EXIT.usage;
  }
  switch (err.name) {
    case "IdentitySetupError":
    case "DriverConfigError":
      io.err(`margo-agent ${command}: ${err.message}`);
      return EXIT.usage;
    case "StoreUnavailableError":
    case "SchemaTooNewError":
      io.err(`margo-agent ${command}: ${err.message}`);
      return EXIT.unreachable;
  }
  if (
    ["EADDRINUSE", "EADDRNOTAVAIL", "EACCES", "ENOENT", "ECONNREFUSED"].includes(err.code ?? "")
  ) {
    io.err(`margo-agent ${command}: ${err.message}`);
    return EXIT.unreachable;
  }
  io.err(`margo-agent ${command}: ${err.stack ?? err.message}`);
  return EXIT.runtime;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // `run` may leave handles (sockets, timers of a closed agent) that would keep node alive.
      if (process.argv[2] === "run") setTimeout(() => process.exit(code), 100).unref();
    },
    (e: unknown) => {
      process.stderr.write(`margo-agent: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = EXIT.runtime;
    },
  );
}
