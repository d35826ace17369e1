/**
 * The CLI's exit codes and the errors that carry them. Scripts branch on the code, so each one
 * means one kind of cause: the WFM refused (fix the request), the command line is wrong (fix the
 * invocation), or the WFM / data directory cannot be used (start the server, fix the folder).
 */
export const EXIT = {
  ok: 0,
  /** The WFM answered with an error (validation, not found, conflict...). */
  wfmFailure: 1,
  /** Unknown command or option, missing or malformed argument. */
  usage: 2,
  /** The WFM cannot be reached, or the data directory is missing, unreadable or not initialised. */
  unavailable: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Base of every error the CLI reports itself; `exitCode` is what the process ends with. */
export abstract class CliError extends Error {
  abstract readonly exitCode: ExitCode;
}

/** The command line is wrong; the message names the argument and the fix. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  readonly exitCode = EXIT.usage;
  constructor(
    message: string,
    /** The command whose `--help` the user should read, e.g. "client add". */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** The data directory is missing, not initialised, or lacks the operator credentials. */
export class DataDirError extends CliError {
  override readonly name = "DataDirError";
  readonly exitCode = EXIT.unavailable;
}

/** No connection to the WFM (refused, TLS failure, wrong server identity, timeout). */
export class WfmUnreachableError extends CliError {
  override readonly name = "WfmUnreachableError";
  readonly exitCode = EXIT.unavailable;
}

/** `serve` could not open a listener (port taken, privileged port without the capability). */
export class ListenError extends CliError {
  override readonly name = "ListenError";
  readonly exitCode = EXIT.unavailable;
}

/**
 * The CLI refused a step itself because it would lock the operator out (e.g. retiring the root
 * that issued its own SVID): exit 1 like a refusal by the WFM, with the command that fixes it.
 */
export class LockoutRefusedError extends CliError {
  override readonly name = "LockoutRefusedError";
  readonly exitCode = EXIT.wfmFailure;
}

/** One field-level error of a problem detail. */
export interface ProblemField {
  field?: string;
  message?: string;
}

/** The WFM refused the request; carries the problem detail it sent, when it sent one. */
export class WfmRequestError extends CliError {
  override readonly name = "WfmRequestError";
  readonly exitCode = EXIT.wfmFailure;
  constructor(
    message: string,
    readonly grpcCode: number,
    readonly problem?: {
      type: string;
      title: string;
      status: number;
      detail?: string;
      errors: ProblemField[];
    },
  ) {
    super(message);
  }
}
