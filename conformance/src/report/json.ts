/**
 * report.json: the machine-readable result, versioned by `reportVersion`. Evidence is already
 * redacted and JSON-safe when it gets here; the replacer is a last guard against bigint (ts-proto
 * uint64) in details a check attached, which JSON.stringify would otherwise throw on.
 */
import type { RunReport } from "../core/types.js";

export const JSON_REPORT_FILE = "report.json";

export function renderJsonReport(report: RunReport): string {
  return `${JSON.stringify(report, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
}

/** Parse a report.json back (self-conformance and mutant tests read it); refuses other versions. */
export function parseJsonReport(text: string): RunReport {
  const r = JSON.parse(text) as RunReport;
  if (r.reportVersion !== "1.0")
    throw new Error(`unsupported reportVersion ${String(r.reportVersion)} (expected 1.0)`);
  return r;
}
