/**
 * Command-line parsing for margo-conformance: a small fixed grammar, so no dependency. Flags take
 * `--flag value` or `--flag=value`; list flags may repeat and take comma-separated values.
 */

/** The command line is wrong (exit code 4, with the help hint). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface FlagSpec {
  /** Takes a value (else boolean). */
  value: boolean;
  /** May repeat / comma-separated list. */
  list?: boolean;
}

export interface ParsedArgs {
  command: string | undefined;
  flags: Map<string, string[]>;
  bools: Set<string>;
}

export function parseArgs(argv: readonly string[], specs: Record<string, FlagSpec>): ParsedArgs {
  const flags = new Map<string, string[]>();
  const bools = new Set<string>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("-")) {
      if (command !== undefined) throw new UsageError(`unexpected argument '${arg}'`);
      command = arg;
      continue;
    }
    if (arg === "-h") {
      bools.add("help");
      continue;
    }
    const eq = arg.indexOf("=");
    const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--/, "");
    const spec = specs[name];
    if (!spec || !arg.startsWith("--")) throw new UsageError(`unknown option '${arg}'`);
    if (!spec.value) {
      if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
      bools.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq < 0 && value.startsWith("--")))
      throw new UsageError(`option --${name} needs a value`);
    const values = spec.list
      ? value
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
      : [value];
    const prev = flags.get(name);
    if (prev && !spec.list) throw new UsageError(`option --${name} given twice`);
    flags.set(name, [...(prev ?? []), ...values]);
  }
  return { command, flags, bools };
}
