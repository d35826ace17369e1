/**
 * Problem is one violation found in an input, named by the rule it breaks. Every validator in
 * this project returns all the problems it finds (never only the first, never by throwing), so
 * a vendor sees everything wrong with a package or a message in one run.
 */
export interface Problem {
  /** Stable rule id such as "description.id-pattern"; fixtures, reports and tests refer to it. */
  readonly rule: string;
  /**
   * Where the problem is: an RFC 6901 JSON pointer into the document ("" is the whole document),
   * `archive:<entry path>` for an archive entry, or `compose.yaml#<pointer>` inside a Compose
   * file. Package-level validators prefix the file they looked at (`margo.yaml#/id`).
   */
  readonly pointer: string;
  /** What is wrong and, where it is obvious, how to fix it. */
  readonly message: string;
  /** Errors reject the input; warnings are reported but do not (e.g. a neutralised setuid bit). */
  readonly severity: "error" | "warning";
}

/** problem builds an error-severity Problem; the common case reads as one call. */
export function problem(rule: string, pointer: string, message: string): Problem {
  return { rule, pointer, message, severity: "error" };
}

/** warning builds a warning-severity Problem. */
export function warning(rule: string, pointer: string, message: string): Problem {
  return { rule, pointer, message, severity: "warning" };
}

/** hasErrors tells whether any problem rejects the input. */
export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

/** pointer joins path segments into an RFC 6901 JSON pointer, escaping "~" and "/". */
export function pointer(...segments: ReadonlyArray<string | number>): string {
  return segments.map((s) => `/${String(s).replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

/**
 * ValidationError carries the full problem list across a boundary that must throw (a decoder
 * whose caller wants a value or an exception). Edges turn it into problem+json or a CLI message.
 */
export class ValidationError extends Error {
  readonly problems: readonly Problem[];
  constructor(what: string, problems: readonly Problem[]) {
    const errors = problems.filter((p) => p.severity === "error");
    super(
      `${what}: ${errors.length} problem(s): ${errors
        .slice(0, 5)
        .map((p) => `${p.rule} at ${p.pointer || "/"}: ${p.message}`)
        .join("; ")}${errors.length > 5 ? "; ..." : ""}`,
    );
    this.name = "ValidationError";
    this.problems = problems;
  }
}
