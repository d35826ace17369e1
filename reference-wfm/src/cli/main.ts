import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { mutantBanner, unknownMutant } from "../mutants.js";
import {
  appCommands,
  caCommands,
  clientCommands,
  deploymentCommands,
  deviceCommands,
  operatorCommands,
} from "./admin-commands.js";
import {
  type CommandContext,
  type CommandSpec,
  commandHelp,
  GLOBAL_OPTIONS,
  overviewHelp,
} from "./command-spec.js";
import { CliError, EXIT, type ExitCode, UsageError, WfmRequestError } from "./errors.js";
import { localCommands } from "./local-commands.js";
import { type CliIo, processIo } from "./output.js";

/**
 * `margo-wfm`: the operator's command line for the reference WFM. `runCli` is the whole program
 * minus process exit, so unit tests drive it in-process; the real entry point is the shim
 * `reference-wfm/bin/margo-wfm`, which runs this file with tsx.
 */
export const COMMANDS: readonly CommandSpec[] = [
  ...localCommands,
  ...clientCommands,
  ...appCommands,
  ...deploymentCommands,
  ...deviceCommands,
  ...caCommands,
  ...operatorCommands,
];

const GROUPS = new Set(COMMANDS.filter((c) => c.path.length > 1).map((c) => c.path[0]));

function findCommand(argv: readonly string[]): CommandSpec | undefined {
  return COMMANDS.find((c) => c.path.every((w, i) => argv[i] === w));
}

function parseOptions(spec: CommandSpec): ParseArgsConfig["options"] {
  const all = { ...(spec.options ?? {}), ...GLOBAL_OPTIONS };
  return Object.fromEntries(
    Object.entries(all).map(([name, o]) => [
      name,
      { type: o.type, ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
}

function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(signal);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

/** Parses and runs one command line; returns the exit code (never calls process.exit). */
export async function runCli(
  argv: readonly string[],
  io: CliIo = processIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ExitCode> {
  const refused = unknownMutant();
  if (refused) {
    io.err(`margo-wfm: refusing to start: ${refused}`);
    return EXIT.usage;
  }
  // A known mutant is honoured, but never silently (test-only; see mutants.ts).
  const banner = mutantBanner();
  if (banner) io.err(`margo-wfm: ${banner}`);
  const wantsHelp = argv.includes("--help") || argv.includes("-h");
  const spec = findCommand(argv);
  if (!spec) {
    const first = argv[0];
    if (first === undefined || first === "help" || (first.startsWith("-") && wantsHelp)) {
      io.out(overviewHelp(COMMANDS, []));
      return first === undefined ? EXIT.usage : EXIT.ok;
    }
    if (GROUPS.has(first) && (argv.length === 1 || wantsHelp)) {
      io.out(overviewHelp(COMMANDS, [first]));
      return wantsHelp ? EXIT.ok : EXIT.usage;
    }
    const words = argv
      .filter((a) => !a.startsWith("-"))
      .slice(0, 2)
      .join(" ");
    io.err(`margo-wfm: unknown command "${words}": run \`margo-wfm --help\` for the list`);
    return EXIT.usage;
  }
  const name = spec.path.join(" ");
  try {
    const ctx = parseCommandLine(spec, argv.slice(spec.path.length), io, env);
    if (ctx === "help") {
      io.out(commandHelp(spec));
      return EXIT.ok;
    }
    await spec.run(ctx);
    return EXIT.ok;
  } catch (e) {
    return report(e, name, io);
  }
}

function parseCommandLine(
  spec: CommandSpec,
  args: readonly string[],
  io: CliIo,
  env: NodeJS.ProcessEnv,
): CommandContext | "help" {
  const name = spec.path.join(" ");
  let parsed: {
    values: Record<string, string | boolean | (string | boolean)[] | undefined>;
    positionals: string[];
  };
  try {
    parsed = parseArgs({
      args: [...args],
      options: parseOptions(spec),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message, name);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return "help";
  const expected = spec.positionals ?? [];
  if (positionals.length !== expected.length) {
    const what = expected.length ? `expects ${expected.join(" ")}` : "takes no arguments";
    throw new UsageError(
      `${name} ${what}, got ${positionals.length ? positionals.map((p) => `"${p}"`).join(" ") : "none"}`,
      name,
    );
  }
  for (const [opt, o] of Object.entries(spec.options ?? {})) {
    if (o.required && values[opt] === undefined) {
      throw new UsageError(`${name} needs --${opt} ${o.arg ?? "VALUE"} (${o.description})`, name);
    }
  }
  const dataDir =
    (typeof values["data-dir"] === "string" ? values["data-dir"] : undefined) ??
    env.MARGO_WFM_DATA_DIR;
  if (!dataDir) {
    throw new UsageError(`${name} needs --data-dir DIR (or MARGO_WFM_DATA_DIR)`, name);
  }
  return {
    dataDir,
    json: values.json === true,
    positionals,
    values: values as CommandContext["values"],
    io,
    waitForStop,
  };
}

/** Prints an error as "what went wrong: how to fix it" and picks the documented exit code. */
function report(e: unknown, command: string, io: CliIo): ExitCode {
  if (e instanceof UsageError) {
    io.err(`margo-wfm ${command}: ${e.message}`);
    io.err(`run \`margo-wfm ${e.command ?? command} --help\` for usage`);
    return e.exitCode;
  }
  if (e instanceof WfmRequestError) {
    io.err(`margo-wfm ${command}: the WFM refused the request: ${e.message}`);
    if (e.problem && e.problem.type !== "about:blank") io.err(`  type: ${e.problem.type}`);
    for (const f of e.problem?.errors ?? []) {
      io.err(`  ${f.field || "/"}: ${f.message ?? ""}`);
    }
    return e.exitCode;
  }
  if (e instanceof CliError) {
    io.err(`margo-wfm ${command}: ${e.message}`);
    return e.exitCode;
  }
  // A bug or an unforeseen failure: say so rather than dressing it up as a WFM answer.
  io.err(`margo-wfm ${command}: unexpected error: ${(e as Error)?.stack ?? String(e)}`);
  return EXIT.wfmFailure;
}

/** True when this module is the process entry (the bin shim), not imported by a test. */
function isEntry(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  process.exitCode = await runCli(process.argv.slice(2));
}
