import { EXIT } from "./errors.js";
import type { CliIo } from "./output.js";

/**
 * How a command describes itself: the parser, `--help` and the README are all derived from these
 * records, so an option cannot exist without being documented.
 */
export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  /** Value placeholder in help, e.g. "DIR". */
  arg?: string;
  description: string;
  required?: boolean;
}

/** What a command's `run` receives after parsing and checking. */
export interface CommandContext {
  dataDir: string;
  json: boolean;
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  io: CliIo;
  /**
   * Resolves with the signal name when the user asks a long-running command (serve) to stop.
   * Handlers are installed only when called, so Ctrl-C still kills any other command at once.
   */
  waitForStop(): Promise<string>;
}

export interface CommandSpec {
  /** Words after `margo-wfm`, e.g. ["client", "add"]. */
  path: readonly string[];
  summary: string;
  /** Positional placeholders, all required, e.g. ["<client-id>"]. */
  positionals?: readonly string[];
  options?: Record<string, OptionSpec>;
  /** Extra paragraphs for `--help` (examples, output shape). */
  notes?: readonly string[];
  run(ctx: CommandContext): Promise<void>;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  "data-dir": {
    type: "string",
    arg: "DIR",
    description: "the WFM's data directory (default: $MARGO_WFM_DATA_DIR)",
  },
  json: {
    type: "boolean",
    description:
      "print one JSON document instead of text (proto3 JSON mapping: 64-bit integers as strings, bytes as base64, timestamps RFC 3339)",
  },
  help: { type: "boolean", description: "show this help and exit 0" },
};

export const EXIT_CODES_HELP = [
  "Exit codes:",
  `  ${EXIT.ok}  success`,
  `  ${EXIT.wfmFailure}  the WFM refused the request (its problem type, detail and field errors are printed)`,
  `  ${EXIT.usage}  usage error: unknown command or option, missing or malformed argument`,
  `  ${EXIT.unavailable}  the WFM cannot be reached, or the data directory is missing or not initialised`,
].join("\n");

function optionLine(name: string, o: OptionSpec): [string, string] {
  const flag = `--${name}${o.type === "string" ? ` ${o.arg ?? "VALUE"}` : ""}`;
  const extra = [o.required ? "required" : "", o.multiple ? "repeatable" : ""].filter(Boolean);
  return [flag, `${o.description}${extra.length ? ` (${extra.join(", ")})` : ""}`];
}

export function usageLine(spec: CommandSpec): string {
  const required = Object.entries(spec.options ?? {})
    .filter(([, o]) => o.required)
    .map(([n, o]) => `--${n} ${o.arg ?? "VALUE"}`);
  return ["margo-wfm", ...spec.path, ...(spec.positionals ?? []), ...required, "[options]"].join(
    " ",
  );
}

export function commandHelp(spec: CommandSpec): string {
  const lines = Object.entries({ ...(spec.options ?? {}), ...GLOBAL_OPTIONS }).map(([n, o]) =>
    optionLine(n, o),
  );
  const width = Math.max(...lines.map(([f]) => f.length));
  return [
    `Usage: ${usageLine(spec)}`,
    "",
    spec.summary,
    ...(spec.notes?.length ? ["", ...spec.notes] : []),
    "",
    "Options:",
    ...lines.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`),
    "",
    EXIT_CODES_HELP,
  ].join("\n");
}

/** Help for `margo-wfm` or a group such as `margo-wfm client`. */
export function overviewHelp(specs: readonly CommandSpec[], prefix: readonly string[]): string {
  const shown = specs.filter((s) => prefix.every((w, i) => s.path[i] === w));
  const names = shown.map((s) => [...s.path, ...(s.positionals ?? [])].join(" "));
  const width = Math.max(...names.map((n) => n.length));
  return [
    `Usage: margo-wfm ${prefix.length ? `${prefix.join(" ")} ` : ""}<command> [options]`,
    "",
    "The reference Margo WFM (rc.3): initialise, serve, and drive it through its admin API.",
    "",
    "Commands:",
    ...shown.map((s, i) => `  ${(names[i] ?? "").padEnd(width)}  ${s.summary}`),
    "",
    "Run `margo-wfm <command> --help` for a command's options.",
    "",
    EXIT_CODES_HELP,
  ].join("\n");
}
