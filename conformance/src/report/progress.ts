/**
 * Live terminal progress: one line per finished check, suite set-up lines, and the final summary
 * block. Colours only on a TTY (CI logs stay clean); progress goes to stderr so stdout can carry
 * machine output (`list --json`).
 */
import { verdictOf } from "../core/exit-code.js";
import type { ProgressEvent } from "../core/runner.js";
import type { CheckResult, Outcome, RunReport } from "../core/types.js";

const COLOUR: Record<Outcome, string> = {
  pass: "\x1b[32m",
  fail: "\x1b[31m",
  error: "\x1b[35m",
  skip: "\x1b[33m",
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

export interface ProgressPrinterOptions {
  write(text: string): void;
  /** Use ANSI colours (default: never; the CLI passes stream.isTTY). */
  color?: boolean;
  /** Only the summary (and failures) are printed. */
  quiet?: boolean;
}

/** Format one finished check as its progress line (plus an indented message line when not a pass). */
export function formatCheckLine(r: CheckResult, color = false): string {
  const label = r.outcome.toUpperCase().padEnd(5);
  const known = r.outcome === "fail" && r.knownFailing ? " (known failing)" : "";
  const head = color ? `${COLOUR[r.outcome]}${label}${RESET}` : label;
  const ms = color ? `${DIM}(${r.durationMs} ms)${RESET}` : `(${r.durationMs} ms)`;
  let line = `${head} ${r.id} ${ms}${known}`;
  if (r.outcome !== "pass" && r.message) {
    const reqs = r.outcome === "fail" ? ` [${r.requirements.join(", ")}]` : "";
    line += `\n      ${r.message.split("\n").join("\n      ")}${reqs}`;
  }
  return line;
}

/**
 * `N pass, N fail (K known), N error, N skip; core: X/Y; conformant: yes|no (core passed: X)`
 * plus a header. The verdict is the exit code's (a run that judged nothing is not conformant),
 * and the core pass count sits next to it so "yes" with 0 passes can never be misread.
 */
export function formatSummary(report: RunReport): string {
  const s = report.summary;
  const v = verdictOf(report);
  const lines = [
    "",
    `margo-conformance ${report.tool.version} · ${report.spec.name} ${report.spec.version} · ${(report.durationMs / 1000).toFixed(1)} s`,
    `profiles: ${report.profiles.join(", ") || "(none)"}`,
    `${s.pass} pass, ${s.fail} fail (${s.knownFail} known), ${s.error} error, ${s.skip} skip; core: ${s.core.pass}/${s.core.total}; conformant: ${v.conformant ? "yes" : "no"} (core passed: ${s.core.pass})`,
  ];
  if (v.reason) lines.push(`not judged: ${v.reason}`);
  return lines.join("\n");
}

/** A ProgressEvent handler writing lines as the run goes. */
export function createProgressPrinter(opts: ProgressPrinterOptions): (e: ProgressEvent) => void {
  const color = opts.color ?? false;
  const line = (s: string) => opts.write(`${s}\n`);
  // A suite that could not open gives every check the same message: print it once, not per check.
  const suiteMessage = new Map<string, string>();
  return (e) => {
    switch (e.type) {
      case "suite-opening":
        if (!opts.quiet) line(`[${e.suite}] setting up (${e.checks} checks selected)`);
        return;
      case "suite-opened":
        if (!opts.quiet) {
          const i = e.implementation;
          line(
            `[${e.suite}] testing ${i.vendor} ${i.product} ${i.version}${i.endpoint ? ` at ${i.endpoint}` : ""} (set up in ${e.durationMs} ms)`,
          );
        }
        return;
      case "suite-unavailable":
        suiteMessage.set(e.suite, e.message);
        line(`[${e.suite}] ${e.outcome === "skip" ? "SKIPPED" : "ERROR"}: ${e.message}`);
        return;
      case "suite-log":
        if (!opts.quiet) line(`[${e.suite}] ${e.line}`);
        return;
      case "check-start":
        return;
      case "check-done":
        if (!opts.quiet || e.result.outcome === "fail" || e.result.outcome === "error")
          line(formatCheckLine(e.result, color));
        return;
      case "suite-closed":
        if (e.closeError) line(`[${e.suite}] tear-down problem: ${e.closeError}`);
        return;
    }
  };
}
