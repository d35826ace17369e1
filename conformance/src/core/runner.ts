/**
 * The runner: opens each selected suite once, runs its checks one after another (they share
 * one implementation under test, whose state each check resets), maps what a check threw to an
 * outcome, and builds the RunReport. Suites judge different implementations, so they may run at
 * the same time.
 *
 * Outcome mapping is the harness's central promise to vendors: only CheckFailed is a *fail*
 * (the implementation broke the spec); a timeout or any other exception is an *error* (the
 * harness or the environment broke), never counted against the implementation.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConformanceConfig } from "../config/types.js";
import { buildCoverage, type CatalogueEntry } from "./coverage.js";
import { verdictOf } from "./exit-code.js";
import { missingFeatures, selectChecks, selectedParts } from "./selection.js";
import { createCheckTools } from "./tools.js";
import {
  type Check,
  CheckFailed,
  type CheckResult,
  CheckSkipped,
  type ImplementationInfo,
  type Outcome,
  partOf,
  type RunReport,
  type Suite,
  type SuiteName,
  type SuiteSession,
  SuiteUnavailable,
} from "./types.js";

/** Any suite, whatever its context and config type (the runner never looks inside either). */
// biome-ignore lint/suspicious/noExplicitAny: suites are contravariant in Ctx; the runner only passes ctx through.
export type AnySuite = Suite<any, any>;

export const TOOL_VERSION = "0.1.0";

/** Live progress, in the order things happen (per suite; suites may interleave). */
export type ProgressEvent =
  | { type: "suite-opening"; suite: SuiteName; checks: number }
  | {
      type: "suite-opened";
      suite: SuiteName;
      implementation: ImplementationInfo;
      durationMs: number;
    }
  | { type: "suite-unavailable"; suite: SuiteName; outcome: "skip" | "error"; message: string }
  | { type: "suite-log"; suite: SuiteName; line: string }
  | { type: "check-start"; suite: SuiteName; id: string }
  | { type: "check-done"; result: CheckResult }
  | { type: "suite-closed"; suite: SuiteName; durationMs: number; closeError?: string };

export interface RunOptions {
  /** The suites this run may use (normally SUITES); config.suites picks among them. */
  suites: Partial<Record<SuiteName, AnySuite>>;
  onProgress?(e: ProgressEvent): void;
  /** Requirement catalogue for the coverage table (empty: the report lists none). */
  catalogue?: readonly CatalogueEntry[];
  /** Parent folder of the suites' work dirs; default a fresh temp dir, removed after the run. */
  workDir?: string;
  /** Keep the work dir after the run (debugging); default config.keepWorkDir. */
  keepWorkDir?: boolean;
  /** Aborts the whole run: running checks see their signal aborted; remaining ones error. */
  signal?: AbortSignal;
  /** Deadline of a suite's open (default 5 min): a device that never becomes ready errors its checks instead of hanging the run. */
  openTimeoutMs?: number;
  /** Deadline of a suite's close (default 2 min). */
  closeTimeoutMs?: number;
  /** How long a timed-out check gets to notice its aborted signal before the next check starts. */
  abortGraceMs?: number;
  now?(): Date;
}

/** Error message of a check that ran past its timeout. */
export class CheckTimeout extends Error {
  override readonly name = "CheckTimeout";
  constructor(readonly timeoutMs: number) {
    super(
      `check timed out after ${timeoutMs} ms (harness/environment problem or an implementation that never answered)`,
    );
  }
}

/** Run the configured suites and build the report. Never throws for a suite or check failure. */
export async function runConformance(
  config: ConformanceConfig,
  opts: RunOptions,
): Promise<RunReport> {
  const now = opts.now ?? (() => new Date());
  const startedAt = now();
  const known = new Set(config.knownFailing);
  const names = config.suites.filter((n) => opts.suites[n] !== undefined);
  const ownWorkDir = opts.workDir === undefined;
  const workRoot = opts.workDir ?? (await mkdtemp(join(tmpdir(), "margo-conf-")));

  const runOne = (name: SuiteName) =>
    runSuite(name, opts.suites[name] as AnySuite, config, {
      known,
      workDir: join(workRoot, name),
      emit: (e) => {
        // Progress is a courtesy: a broken terminal (EPIPE) must not abort the run or lose the report.
        try {
          opts.onProgress?.(e);
        } catch {}
      },
      signal: opts.signal,
      abortGraceMs: opts.abortGraceMs ?? 1000,
      openTimeoutMs: opts.openTimeoutMs ?? 300_000,
      closeTimeoutMs: opts.closeTimeoutMs ?? 120_000,
      now,
    });

  let perSuite: SuiteOutcome[];
  try {
    if (config.parallelSuites) {
      perSuite = await Promise.all(names.map(runOne));
    } else {
      perSuite = [];
      for (const n of names) perSuite.push(await runOne(n));
    }
  } finally {
    if (ownWorkDir && !(opts.keepWorkDir ?? config.keepWorkDir))
      await rm(workRoot, { recursive: true, force: true });
  }

  const checks = perSuite.flatMap((s) => s.results);
  const implementations: RunReport["implementations"] = {};
  for (const s of perSuite) if (s.implementation) implementations[s.name] = s.implementation;
  const parts = selectedParts(config.select);
  const finishedAt = now();
  return {
    reportVersion: "1.0",
    tool: { name: "margo-conformance", version: TOOL_VERSION },
    spec: { name: "Margo", version: "1.0.0-rc.3" },
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    implementations,
    profiles: names.flatMap((n) => parts.map((p) => `${n}-${p}`)),
    summary: summarise(checks),
    checks,
    requirements: buildCoverage(opts.catalogue ?? [], checks),
  };
}

/**
 * Counts over results; `conformant` is the exit-code verdict (no core check failed or errored AND
 * something was judged), so the reports can never say yes where the exit code says no.
 */
export function summarise(checks: readonly CheckResult[]): RunReport["summary"] {
  const count = (rs: readonly CheckResult[], o: Outcome) =>
    rs.filter((r) => r.outcome === o).length;
  const core = checks.filter((r) => r.part === "core");
  const coreSummary = {
    total: core.length,
    pass: count(core, "pass"),
    fail: count(core, "fail"),
    error: count(core, "error"),
    skip: count(core, "skip"),
  };
  return {
    total: checks.length,
    pass: count(checks, "pass"),
    fail: count(checks, "fail"),
    error: count(checks, "error"),
    skip: count(checks, "skip"),
    knownFail: checks.filter((r) => r.outcome === "fail" && r.knownFailing).length,
    core: coreSummary,
    conformant: verdictOf({ checks: [...checks] }).conformant,
  };
}

interface SuiteOutcome {
  name: SuiteName;
  implementation?: ImplementationInfo;
  results: CheckResult[];
}

interface SuiteRunCtx {
  known: Set<string>;
  workDir: string;
  emit(e: ProgressEvent): void;
  signal: AbortSignal | undefined;
  abortGraceMs: number;
  openTimeoutMs: number;
  closeTimeoutMs: number;
  now(): Date;
}

async function runSuite(
  name: SuiteName,
  suite: AnySuite,
  config: ConformanceConfig,
  rc: SuiteRunCtx,
): Promise<SuiteOutcome> {
  const selected = selectChecks(suite.checks, config.select);
  const results: CheckResult[] = [];
  if (selected.length === 0) return { name, results };
  rc.emit({ type: "suite-opening", suite: name, checks: selected.length });

  const section = config[name];
  if (section === undefined) {
    const message = `suite ${name} not configured: the configuration has no '${name}' section`;
    rc.emit({ type: "suite-unavailable", suite: name, outcome: "skip", message });
    for (const c of selected) results.push(done(rc, staticResult(c, rc, "skip", message)));
    return { name, results };
  }

  const openStart = Date.now();
  let session: SuiteSession<unknown>;
  const openAbort = new AbortController();
  const unlink = linkAbort(rc.signal, openAbort);
  try {
    await mkdir(rc.workDir, { recursive: true });
    session = await withDeadline(
      suite.open(section, {
        workDir: rc.workDir,
        log: (line) => rc.emit({ type: "suite-log", suite: name, line }),
        signal: openAbort.signal,
      }),
      rc.openTimeoutMs,
      () => {
        openAbort.abort(new Error("suite set-up timed out"));
        return new Error(`suite set-up did not finish within ${rc.openTimeoutMs} ms`);
      },
      // A session that arrives after the deadline must still be torn down (it may own processes).
      (late) => void late.close().catch(() => {}),
    );
  } catch (err) {
    const unavailable = err instanceof SuiteUnavailable || err instanceof CheckSkipped;
    const outcome = unavailable ? "skip" : "error";
    const message = unavailable
      ? `suite ${name} unavailable: ${errorText(err)}`
      : `suite ${name} could not be set up (harness/environment): ${errorText(err)}`;
    rc.emit({ type: "suite-unavailable", suite: name, outcome, message });
    for (const c of selected) results.push(done(rc, staticResult(c, rc, outcome, message)));
    return { name, results };
  } finally {
    unlink();
  }
  rc.emit({
    type: "suite-opened",
    suite: name,
    implementation: session.implementation,
    durationMs: Date.now() - openStart,
  });

  try {
    for (const check of selected) {
      if (rc.signal?.aborted) {
        results.push(
          done(rc, staticResult(check, rc, "error", "run aborted before this check started")),
        );
        continue;
      }
      const missing = missingFeatures(check, session.implementation.features);
      if (missing.length > 0) {
        const message = `needs feature${missing.length > 1 ? "s" : ""} ${missing.join(", ")}, which the implementation does not claim`;
        results.push(done(rc, staticResult(check, rc, "skip", message)));
        continue;
      }
      rc.emit({ type: "check-start", suite: name, id: check.id });
      results.push(done(rc, await runCheck(check, session, config, rc)));
    }
  } finally {
    const closeStart = Date.now();
    let closeError: string | undefined;
    try {
      await withDeadline(
        session.close(),
        rc.closeTimeoutMs,
        () => new Error(`close did not finish within ${rc.closeTimeoutMs} ms`),
      );
    } catch (err) {
      closeError = errorText(err);
    }
    rc.emit({
      type: "suite-closed",
      suite: name,
      durationMs: Date.now() - closeStart,
      ...(closeError !== undefined ? { closeError } : {}),
    });
  }
  return { name, implementation: session.implementation, results };
}

function done(rc: SuiteRunCtx, r: CheckResult): CheckResult {
  rc.emit({ type: "check-done", result: r });
  return r;
}

function baseResult(
  check: Check<unknown>,
  known: ReadonlySet<string>,
  startedAt: Date,
): Omit<CheckResult, "outcome"> {
  return {
    id: check.id,
    title: check.title,
    suite: check.suite,
    family: check.family,
    level: check.level,
    part: partOf(check.level),
    requirements: [...check.requirements],
    knownFailing: known.has(check.id),
    startedAt: startedAt.toISOString(),
    durationMs: 0,
    notes: [],
    evidence: [],
  };
}

function staticResult(
  check: Check<unknown>,
  rc: SuiteRunCtx,
  outcome: Outcome,
  message: string,
): CheckResult {
  return { ...baseResult(check, rc.known, rc.now()), outcome, message };
}

/**
 * Run one check (with the session's beforeEach) under its timeout and map what happened.
 * Exported for tests of the outcome mapping.
 */
export async function runCheck(
  check: Check<unknown>,
  session: SuiteSession<unknown>,
  config: Pick<ConformanceConfig, "checkTimeoutMs">,
  rc: Pick<SuiteRunCtx, "known" | "signal" | "abortGraceMs" | "now">,
): Promise<CheckResult> {
  const startedAt = rc.now();
  const t0 = performance.now();
  const timeoutMs = check.timeoutMs ?? config.checkTimeoutMs;
  const abort = new AbortController();
  const unlink = linkAbort(rc.signal, abort);
  const handle = createCheckTools({ signal: abort.signal, now: rc.now });

  let outcome: Outcome = "pass";
  let message: string | undefined;
  let details: unknown;
  let timer: NodeJS.Timeout | undefined;
  const body = (async () => {
    if (session.beforeEach) {
      try {
        await session.beforeEach(check, handle.tools);
      } catch (err) {
        if (err instanceof CheckSkipped) throw err;
        // A failed reset says nothing about the requirement under test: it is an error.
        throw new BeforeEachError(err);
      }
    }
    await check.run(session.ctx, handle.tools);
  })();
  // A check abandoned at its timeout may still reject later; that must not crash the process.
  body.catch(() => {});
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort(new CheckTimeout(timeoutMs));
      reject(new CheckTimeout(timeoutMs));
    }, timeoutMs);
  });
  // A run stopped from outside (Ctrl-C) must not wait for a check that ignores its signal.
  let onRunAbort: (() => void) | undefined;
  const runAborted = new Promise<never>((_, reject) => {
    onRunAbort = () => reject(new RunAborted(rc.signal?.reason));
    rc.signal?.addEventListener("abort", onRunAbort, { once: true });
  });
  try {
    await Promise.race([body, timeout, runAborted]);
    if (rc.signal?.aborted) throw new RunAborted(rc.signal.reason);
  } catch (err) {
    if (err instanceof CheckFailed) {
      outcome = "fail";
      message = err.message;
      details = err.details;
    } else if (err instanceof CheckSkipped) {
      outcome = "skip";
      message = err.message || "skipped without a reason (check bug)";
    } else if (err instanceof CheckTimeout || err instanceof RunAborted) {
      outcome = "error";
      message = err.message;
      // Give the check a moment to see the aborted signal so it does not overlap the next one.
      await Promise.race([body.catch(() => {}), sleep(rc.abortGraceMs)]);
    } else {
      outcome = "error";
      message = errorText(err);
      if (err instanceof Error && !(err instanceof BeforeEachError))
        details = { name: err.name, stack: stackHead(err) };
    }
  } finally {
    clearTimeout(timer);
    if (onRunAbort) rc.signal?.removeEventListener("abort", onRunAbort);
    runAborted.catch(() => {});
    unlink();
    handle.seal();
  }
  const notes = handle.notes();
  const dropped = handle.droppedEvidence();
  if (dropped > 0)
    notes.push(`${dropped} more evidence entries were recorded but not kept (cap per check)`);
  const result: CheckResult = {
    ...baseResult(check, rc.known, startedAt),
    outcome,
    durationMs: Math.round(performance.now() - t0),
    notes,
    evidence: handle.evidence(),
  };
  if (message !== undefined) result.message = message;
  if (details !== undefined) result.details = details;
  return result;
}

/** The whole run was stopped while this check ran: an error, no verdict. */
class RunAborted extends Error {
  override readonly name = "RunAborted";
  constructor(reason: unknown) {
    super(
      `run aborted while this check ran (${reason instanceof Error ? reason.message : String(reason)})`,
    );
  }
}

/** A suite's beforeEach (reset) threw: reported as an error naming that step. */
class BeforeEachError extends Error {
  override readonly name = "BeforeEachError";
  constructor(cause: unknown) {
    super(`before the check (suite reset) failed: ${errorText(cause)}`, { cause });
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error)
    return err.name && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}

function stackHead(err: Error): string | undefined {
  return err.stack?.split("\n").slice(0, 6).join("\n");
}

/** Await `p`, or reject with `onTimeout()` after `ms`; `onLate` receives a value that came too late. */
function withDeadline<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  onLate?: (v: T) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(onTimeout());
    }, ms);
  });
  p.then(
    (v) => {
      if (expired) onLate?.(v);
    },
    () => {},
  );
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Forward an outer abort to an inner controller; returns the unlink function. */
function linkAbort(outer: AbortSignal | undefined, inner: AbortController): () => void {
  if (!outer) return () => {};
  if (outer.aborted) {
    inner.abort(outer.reason);
    return () => {};
  }
  const on = () => inner.abort(outer.reason);
  outer.addEventListener("abort", on, { once: true });
  return () => outer.removeEventListener("abort", on);
}
