/**
 * Exit codes of `margo-agent`, stable so scripts and the conformance harness can act on them
 * without parsing messages.
 */
export const EXIT = {
  ok: 0,
  /** The agent or the command failed while running. */
  runtime: 1,
  /** Bad command line or configuration (the message names the option or config key). */
  usage: 2,
  /** Something it needs cannot be reached (state database, listening port, WFM for start-up). */
  unreachable: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command-line mistake; printed with the command's help hint, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Where commands write; tests capture it, the shim uses the process streams. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
};

/** JSON with 64-bit values as strings (manifestVersion, trust sequence). */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), indent);
}
