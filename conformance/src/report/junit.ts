/**
 * report.xml in the JUnit format CI systems read: one testsuite per suite, one testcase per
 * check; failure / error / skipped elements carry the message, properties carry the requirement
 * ids, so a CI failure annotation already names the requirement broken.
 */
import type { CheckResult, RunReport, SuiteName } from "../core/types.js";

export const JUNIT_REPORT_FILE = "report.xml";

/** Whether XML 1.0 allows this code point at all (even escaped it may not appear otherwise). */
function xmlAllowed(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function dropInvalid(s: string): string {
  let out = "";
  for (const ch of s) out += xmlAllowed(ch.codePointAt(0) ?? 0) ? ch : "\ufffd";
  return out;
}

/** Escape for element text and attribute values (both quote kinds), dropping invalid characters. */
export function xmlEscape(s: string): string {
  return dropInvalid(s)

    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const secs = (ms: number) => (ms / 1000).toFixed(3);

export function renderJunitReport(report: RunReport): string {
  const bySuite = new Map<SuiteName, CheckResult[]>();
  for (const c of report.checks) bySuite.set(c.suite, [...(bySuite.get(c.suite) ?? []), c]);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const s = report.summary;
  lines.push(
    `<testsuites name="margo-conformance" tests="${s.total}" failures="${s.fail}" errors="${s.error}" skipped="${s.skip}" time="${secs(report.durationMs)}" timestamp="${xmlEscape(report.startedAt)}">`,
  );
  for (const [suite, checks] of bySuite) {
    const n = (o: string) => checks.filter((c) => c.outcome === o).length;
    const time = checks.reduce((a, c) => a + c.durationMs, 0);
    lines.push(
      `  <testsuite name="${suite}" tests="${checks.length}" failures="${n("fail")}" errors="${n("error")}" skipped="${n("skip")}" time="${secs(time)}" timestamp="${xmlEscape(checks[0]?.startedAt ?? report.startedAt)}">`,
    );
    const impl = report.implementations[suite];
    lines.push("    <properties>");
    lines.push(
      `      <property name="spec" value="${xmlEscape(`${report.spec.name} ${report.spec.version}`)}"/>`,
    );
    if (impl) {
      lines.push(
        `      <property name="implementation" value="${xmlEscape(`${impl.vendor} ${impl.product} ${impl.version}`)}"/>`,
      );
      if (impl.endpoint)
        lines.push(`      <property name="endpoint" value="${xmlEscape(impl.endpoint)}"/>`);
    }
    lines.push("    </properties>");
    for (const c of checks) lines.push(...testcase(c));
    lines.push("  </testsuite>");
  }
  lines.push("</testsuites>", "");
  return lines.join("\n");
}

function testcase(c: CheckResult): string[] {
  const out = [
    `    <testcase name="${xmlEscape(c.id)}" classname="${xmlEscape(c.family)}" time="${secs(c.durationMs)}">`,
  ];
  out.push("      <properties>");
  out.push(`        <property name="title" value="${xmlEscape(c.title)}"/>`);
  out.push(`        <property name="level" value="${c.level}"/>`);
  out.push(`        <property name="part" value="${c.part}"/>`);
  for (const r of c.requirements)
    out.push(`        <property name="requirement" value="${xmlEscape(r)}"/>`);
  if (c.knownFailing) out.push('        <property name="knownFailing" value="true"/>');
  out.push("      </properties>");
  const msg = xmlEscape(c.message ?? "");
  const body = c.details === undefined ? "" : xmlEscape(JSON.stringify(c.details, null, 2));
  const reqs = `requirements: ${c.requirements.join(", ")}`;
  if (c.outcome === "fail") {
    const type = c.knownFailing ? "KnownFailing" : "CheckFailed";
    out.push(
      `      <failure message="${msg}" type="${type}">${xmlEscape(reqs)}${body ? `\n${body}` : ""}</failure>`,
    );
  } else if (c.outcome === "error") {
    out.push(
      `      <error message="${msg}" type="HarnessError">${xmlEscape(reqs)}${body ? `\n${body}` : ""}</error>`,
    );
  } else if (c.outcome === "skip") {
    out.push(`      <skipped message="${msg}"/>`);
  }
  if (c.notes.length > 0)
    out.push(`      <system-out>${xmlEscape(c.notes.join("\n"))}</system-out>`);
  out.push("    </testcase>");
  return out;
}
