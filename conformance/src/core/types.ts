/**
 * The harness's core contract: what a check is, what it may do while it runs, what it produces.
 * Suites (wfm, device, package) only add a context type; the runner, the reports and the
 * catalogue test know nothing else about them.
 */

/** RFC 2119 level of a requirement; a check's level is the highest level of what it cites. */
export type Level = "MUST" | "SHOULD" | "MAY";

/** Who a requirement binds (digest 13.2 legend: W, C/D, A/R, M). */
export type Persona = "wfm" | "device" | "package" | "mis" | "registry";

/** The three systems-under-test the harness can judge. */
export type SuiteName = "wfm" | "device" | "package";

/**
 * pass: the implementation did what the spec requires.
 * fail: the implementation broke the spec (a finding against the vendor).
 * error: the harness or the environment broke (no verdict about the implementation).
 * skip: not applicable or not runnable here (always with a printed reason).
 */
export type Outcome = "pass" | "fail" | "error" | "skip";

/** Profile part: core = MUST checks, extended = SHOULD/MAY checks. */
export type ProfilePart = "core" | "extended";

/** One exchange the check saw, kept as evidence in the report (redacted before it is stored). */
export type Evidence =
  | {
      kind: "http";
      at: string;
      durationMs: number;
      /** Which identity the harness used, e.g. "client conf-a" or "no client certificate". */
      actor?: string;
      request: HttpMessageEvidence & { method: string; url: string };
      response?: HttpMessageEvidence & { status: number };
      /** Set when no response came (TLS refused, reset, timeout). */
      transportError?: string;
    }
  | {
      kind: "grpc";
      at: string;
      durationMs: number;
      method: string;
      request: unknown;
      response?: unknown;
      error?: { code: number; message: string };
    }
  | { kind: "docker"; at: string; what: string; data: unknown }
  | {
      kind: "command";
      at: string;
      command: string;
      exitCode: number | null;
      stdout: string;
      stderr: string;
    }
  | { kind: "note"; at: string; text: string };

export interface HttpMessageEvidence {
  headers: Record<string, string | string[]>;
  /** UTF-8 text when the body is text, else base64; truncated bodies keep their full digest. */
  body?: { text?: string; base64?: string; sizeBytes: number; sha256: string; truncated: boolean };
}

/** Thrown through `CheckTools.fail`: the implementation broke the spec. */
export class CheckFailed extends Error {
  override readonly name = "CheckFailed";
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Thrown through `CheckTools.skip`: the check does not apply or cannot run here. */
export class CheckSkipped extends Error {
  override readonly name = "CheckSkipped";
}

/**
 * What a running check can do besides talking to the implementation. Anything a check throws
 * that is not CheckFailed/CheckSkipped is an *error* (harness or environment), never a fail.
 */
export interface CheckTools {
  /** Aborted at the check's timeout; pass it to every wait and request. */
  readonly signal: AbortSignal;
  /** Record one exchange; wire clients call this for every request they make. */
  evidence(e: Evidence): void;
  /** A free-text note shown with the result. */
  note(text: string): void;
  fail(message: string, details?: unknown): never;
  skip(reason: string): never;
  /** fail(message) unless cond. */
  expect(cond: unknown, message: string, details?: unknown): asserts cond;
  /** fail with both values shown unless they are deep-equal (JSON comparison). */
  expectEqual<T>(actual: unknown, expected: T, what: string): asserts actual is T;
}

/**
 * A declarative check. `family` groups checks that test one area (the mutant matrix asserts a
 * mutant fails only its family); by convention it is the id's first two dotted segments.
 */
export interface Check<Ctx> {
  /** Stable, dotted, kebab-case: `<suite>.<area>.<what>`, e.g. `wfm.manifest.etag-is-body-digest`. */
  readonly id: string;
  readonly title: string;
  readonly suite: SuiteName;
  readonly family: string;
  /** Catalogue requirement ids this check gives evidence for (at least one). */
  readonly requirements: readonly string[];
  readonly level: Level;
  /** Optional features the implementation must claim for the check to apply (else skip). */
  readonly features?: readonly string[];
  /** Default 30 s; the device suite's deploy checks need more. */
  readonly timeoutMs?: number;
  run(ctx: Ctx, t: CheckTools): Promise<void>;
}

/** Who was tested, as the implementation described itself (driver Info) or as configured. */
export interface ImplementationInfo {
  vendor: string;
  product: string;
  version: string;
  margoVersion: string;
  /** Optional features the implementation claims (driver Info) plus what the harness detected. */
  features: string[];
  /** Where it was reached, e.g. the Management Interface URL or the package source. */
  endpoint?: string;
}

/** What a suite hands the runner once it is set up. */
export interface SuiteSession<Ctx> {
  readonly ctx: Ctx;
  readonly implementation: ImplementationInfo;
  /** Bring the implementation back to a clean state before each check (driver Reset etc.). */
  beforeEach?(check: Check<Ctx>, t: CheckTools): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by `Suite.open` when the suite cannot run at all here: every selected check is skipped with this reason. */
export class SuiteUnavailable extends Error {
  override readonly name = "SuiteUnavailable";
}

/** Services the runner gives a suite while it opens (progress lines, scratch space). */
export interface SuiteIo {
  /** A fresh directory for this suite's files (identities, configs, Compose host state). */
  readonly workDir: string;
  /** One line of live progress (the runner prefixes the suite name). */
  log(line: string): void;
  readonly signal: AbortSignal;
}

export interface Suite<Ctx, Cfg> {
  readonly name: SuiteName;
  readonly checks: readonly Check<Ctx>[];
  /** Cfg is this suite's section of the configuration (ConformanceConfig["wfm"] etc.). */
  open(config: Cfg, io: SuiteIo): Promise<SuiteSession<Ctx>>;
}

/** One check's result as the runner records it (and the JSON report stores it). */
export interface CheckResult {
  id: string;
  title: string;
  suite: SuiteName;
  family: string;
  level: Level;
  part: ProfilePart;
  requirements: string[];
  outcome: Outcome;
  /** Why it failed, errored or was skipped; absent for a plain pass. */
  message?: string;
  details?: unknown;
  /** True when the check is on the vendor's known-failing list. */
  knownFailing: boolean;
  startedAt: string;
  durationMs: number;
  notes: string[];
  evidence: Evidence[];
}

/** Profile name as shown in reports and selected on the command line: `<suite>-<part>`. */
export function profileOf(suite: SuiteName, level: Level): string {
  return `${suite}-${partOf(level)}`;
}

export function partOf(level: Level): ProfilePart {
  return level === "MUST" ? "core" : "extended";
}

/** The JSON report (`report.json`); bump `reportVersion` on any incompatible change. */
export interface RunReport {
  reportVersion: "1.0";
  tool: { name: "margo-conformance"; version: string };
  spec: { name: "Margo"; version: "1.0.0-rc.3" };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Per suite that ran: who was tested. */
  implementations: Partial<Record<SuiteName, ImplementationInfo>>;
  /** Profiles that were selected, e.g. ["wfm-core", "wfm-extended"]. */
  profiles: string[];
  summary: {
    total: number;
    pass: number;
    fail: number;
    error: number;
    skip: number;
    /** Fails of checks on the known-failing list (included in `fail`). */
    knownFail: number;
    core: { total: number; pass: number; fail: number; error: number; skip: number };
    /** True only when every selected core check passed (skips excepted). */
    conformant: boolean;
  };
  checks: CheckResult[];
  /** Catalogue coverage: each requirement with the checks that cited it in this run. */
  requirements: Array<{
    id: string;
    level: Level;
    persona: Persona;
    section: string;
    checklistItem?: number;
    crId?: string;
    text: string;
    checks: string[];
    /** Why no black-box check can judge it (catalogue). */
    untestable?: string;
    /** A known gap: testable, not tested by this harness yet, and why (catalogue). */
    notCovered?: string;
    /** Worst outcome among its checks in this run, or "not-run". */
    outcome: Outcome | "not-run";
  }>;
}
