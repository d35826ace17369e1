/**
 * report.html: one self-contained page (inline CSS and a few lines of inline JS, no external
 * asset, no link out) that a person reading a certification result would rather open than the
 * JSON: a verdict banner, per-suite tables filterable by outcome, each check expandable to its
 * message, the requirements it cites and the redacted exchanges it saw, and the coverage table.
 */
import type {
  CheckResult,
  Evidence,
  ImplementationInfo,
  RunReport,
  SuiteName,
} from "../core/types.js";

export const HTML_REPORT_FILE = "report.html";

type Requirement = RunReport["requirements"][number];

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const e = escapeHtml;

const CSS = `
:root{--pass:#1a7f37;--fail:#cf222e;--error:#8250df;--skip:#9a6700;--bg:#fff;--fg:#1f2328;--mute:#656d76;--line:#d0d7de}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header,main,footer{padding:12px 24px}h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
.banner{padding:16px 24px;color:#fff;font-size:18px;font-weight:600}.banner.yes{background:var(--pass)}.banner.no{background:var(--fail)}
.banner small{display:block;font-weight:400;font-size:14px;opacity:.95}
table{border-collapse:collapse;width:100%;margin:4px 0 12px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f6f8fa;font-weight:600}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-all;margin:4px 0}
.o{font-weight:700;text-transform:uppercase;font-size:12px}.o-pass>.o,.t-pass{color:var(--pass)}.o-fail>.o,.t-fail{color:var(--fail)}
.o-error>.o,.t-error{color:var(--error)}.o-skip>.o,.t-skip{color:var(--skip)}.t-not-run{color:var(--mute)}
details.check{border:1px solid var(--line);border-radius:6px;margin:4px 0}details.check>summary{cursor:pointer;padding:6px 10px;display:flex;gap:12px;align-items:baseline}
details.check>summary .id{font-family:ui-monospace,monospace;font-weight:600}details.check>summary .title{color:var(--mute);flex:1}
details.check>div{padding:4px 12px 12px}.msg{white-space:pre-wrap;font-weight:600}.mute{color:var(--mute)}
.filters{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 24px;z-index:1}
.filters label{margin-right:14px;cursor:pointer}.ev{border-left:3px solid var(--line);padding-left:8px;margin:8px 0}
.known{background:#fff8c5;padding:0 4px;border-radius:4px;font-size:12px}
#f-pass:not(:checked)~main .o-pass,#f-fail:not(:checked)~main .o-fail,#f-error:not(:checked)~main .o-error,#f-skip:not(:checked)~main .o-skip{display:none}
#f-pass:not(:checked)~.filters label[for=f-pass],#f-fail:not(:checked)~.filters label[for=f-fail],#f-error:not(:checked)~.filters label[for=f-error],#f-skip:not(:checked)~.filters label[for=f-skip]{text-decoration:line-through;opacity:.6}
`;

const JS = `
document.getElementById("expand").addEventListener("click",function(){document.querySelectorAll("details.check").forEach(function(d){d.open=true})});
document.getElementById("collapse").addEventListener("click",function(){document.querySelectorAll("details.check").forEach(function(d){d.open=false})});
`;

/** Render the page. Every string from the report is escaped; nothing is fetched at view time. */
export function renderHtmlReport(report: RunReport): string {
  const s = report.summary;
  const reqById = new Map(report.requirements.map((r) => [r.id, r]));
  const suites = [...new Set(report.checks.map((c) => c.suite))];
  const counts = `${s.pass} pass, ${s.fail} fail (${s.knownFail} known), ${s.error} error, ${s.skip} skip; core: ${s.core.pass}/${s.core.total}`;
  const parts: string[] = [];
  parts.push(
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>Margo conformance: ${s.conformant ? "conformant" : "not conformant"}</title>`,
    `<style>${CSS}</style></head><body>`,
    `<div class="banner ${s.conformant ? "yes" : "no"}">${s.conformant ? "Conformant" : "Not conformant"} · ${e(report.spec.name)} ${e(report.spec.version)}<small>${e(counts)} · ${(report.durationMs / 1000).toFixed(1)} s · profiles ${e(report.profiles.join(", ") || "(none)")}</small></div>`,
    `<header><h1>Margo conformance report</h1><div class="mute">${e(report.tool.name)} ${e(report.tool.version)} · started ${e(report.startedAt)} · finished ${e(report.finishedAt)} · report version ${e(report.reportVersion)}</div></header>`,
    '<input type="checkbox" id="f-pass" checked hidden><input type="checkbox" id="f-fail" checked hidden><input type="checkbox" id="f-error" checked hidden><input type="checkbox" id="f-skip" checked hidden>',
    `<div class="filters">Show: <label for="f-pass" class="t-pass">☑ pass (${s.pass})</label><label for="f-fail" class="t-fail">☑ fail (${s.fail})</label><label for="f-error" class="t-error">☑ error (${s.error})</label><label for="f-skip" class="t-skip">☑ skip (${s.skip})</label> <button type="button" id="expand">expand all</button> <button type="button" id="collapse">collapse all</button> <span class="mute">(click an outcome to hide or show it)</span></div>`,
    "<main>",
  );
  parts.push(implementationsTable(report.implementations));
  for (const suite of suites)
    parts.push(
      suiteSection(
        suite,
        report.checks.filter((c) => c.suite === suite),
        reqById,
      ),
    );
  parts.push(coverageTable(report.requirements));
  parts.push(
    "</main>",
    `<footer class="mute">Evidence is redacted: private keys, tokens and cookies removed, certificates shown as fingerprints, bodies over 64 KiB cut (size and sha256 kept).</footer>`,
  );
  parts.push(`<script>${JS}</script></body></html>`, "");
  return parts.join("\n");
}

function implementationsTable(impls: Partial<Record<SuiteName, ImplementationInfo>>): string {
  const rows = Object.entries(impls).map(
    ([suite, i]) =>
      `<tr><td>${e(suite)}</td><td>${e(i.vendor)}</td><td>${e(i.product)}</td><td>${e(i.version)}</td><td>${e(i.margoVersion)}</td><td>${e(i.endpoint ?? "")}</td><td>${e(i.features.join(", "))}</td></tr>`,
  );
  if (rows.length === 0)
    return '<h2>Implementation under test</h2><p class="mute">No suite could be set up.</p>';
  return `<h2>Implementation under test</h2><table><tr><th>Suite</th><th>Vendor</th><th>Product</th><th>Version</th><th>Margo</th><th>Endpoint</th><th>Features</th></tr>${rows.join("")}</table>`;
}

function suiteSection(
  suite: SuiteName,
  checks: CheckResult[],
  reqById: Map<string, Requirement>,
): string {
  const n = (o: string) => checks.filter((c) => c.outcome === o).length;
  const head = `<h2>Suite ${e(suite)} <span class="mute">(${checks.length} checks: ${n("pass")} pass, ${n("fail")} fail, ${n("error")} error, ${n("skip")} skip)</span></h2>`;
  return head + checks.map((c) => checkBlock(c, reqById)).join("\n");
}

function checkBlock(c: CheckResult, reqById: Map<string, Requirement>): string {
  const known = c.knownFailing ? ' <span class="known">known failing</span>' : "";
  const reqRows = c.requirements
    .map((id) => {
      const r = reqById.get(id);
      return r
        ? `<tr><td><code>${e(id)}</code></td><td>${r.level}</td><td>${e(r.text)}</td><td>${e(r.crId ?? "")}</td><td>${e(r.section)}</td></tr>`
        : `<tr><td><code>${e(id)}</code></td><td colspan="4" class="mute">(not in the catalogue loaded for this run)</td></tr>`;
    })
    .join("");
  const body: string[] = [];
  if (c.message) body.push(`<p class="msg t-${c.outcome}">${e(c.message)}</p>`);
  body.push(
    `<p class="mute">${c.level} · ${c.part} · family <code>${e(c.family)}</code> · started ${e(c.startedAt)} · ${c.durationMs} ms</p>`,
  );
  body.push(
    `<table><tr><th>Requirement</th><th>Level</th><th>Text</th><th>CR-ID</th><th>Section</th></tr>${reqRows}</table>`,
  );
  if (c.details !== undefined)
    body.push(`<div><b>Details</b><pre>${e(pretty(c.details))}</pre></div>`);
  if (c.notes.length > 0) body.push(`<div><b>Notes</b><pre>${e(c.notes.join("\n"))}</pre></div>`);
  const ev = c.evidence.filter((x) => x.kind !== "note");
  if (ev.length > 0)
    body.push(`<div><b>Evidence (${ev.length})</b>${ev.map(evidenceBlock).join("")}</div>`);
  return `<details class="check o-${c.outcome}"><summary class="o-${c.outcome}"><span class="o">${c.outcome}</span><span class="id">${e(c.id)}</span><span class="title">${e(c.title)}${known}</span><span class="mute">${c.durationMs} ms</span></summary><div>${body.join("")}</div></details>`;
}

function pretty(v: unknown): string {
  if (typeof v === "string") return v;
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x), 2) ?? String(v);
}

function prettyBody(
  b:
    | { text?: string; base64?: string; sizeBytes: number; sha256: string; truncated: boolean }
    | undefined,
): string {
  if (!b) return "";
  const meta = `${b.sizeBytes} bytes, sha256 ${b.sha256}${b.truncated ? ", truncated" : ""}`;
  let shown = b.text ?? (b.base64 !== undefined ? `[binary, base64]\n${b.base64}` : "");
  let how = "";
  // Pretty-print JSON for reading, but never where JSON.parse would round a uint64 (a manifest
  // version shown wrong would mislead the reader of a version check): such bodies stay as sent.
  if (b.text !== undefined && !/\d{16,}/.test(b.text)) {
    try {
      const pretty = JSON.stringify(JSON.parse(b.text), null, 2);
      if (pretty !== b.text) how = ", pretty-printed";
      shown = pretty;
    } catch {
      // not JSON: shown as sent
    }
  }
  return `<div class="mute">body: ${e(meta)}${how}</div><pre>${e(shown)}</pre>`;
}

function headers(h: Record<string, string | string[]>): string {
  return Object.entries(h)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`)
    .join("\n");
}

function evidenceBlock(x: Evidence): string {
  switch (x.kind) {
    case "http": {
      const req = `${x.request.method} ${x.request.url}${x.actor ? `   (as ${x.actor})` : ""}`;
      const res = x.response
        ? `→ ${x.response.status} (${x.durationMs} ms)`
        : `→ no response: ${x.transportError ?? "?"}`;
      return `<div class="ev"><code>${e(req)}</code><br><code>${e(res)}</code><pre>${e(headers(x.request.headers))}</pre>${prettyBody(x.request.body)}${
        x.response
          ? `<pre>${e(headers(x.response.headers))}</pre>${prettyBody(x.response.body)}`
          : ""
      }<div class="mute">${e(x.at)}</div></div>`;
    }
    case "grpc":
      return `<div class="ev"><code>gRPC ${e(x.method)} (${x.durationMs} ms)${x.error ? ` → code ${x.error.code}: ${e(x.error.message)}` : ""}</code><pre>${e(pretty(x.request))}</pre>${
        x.response !== undefined ? `<pre>${e(pretty(x.response))}</pre>` : ""
      }<div class="mute">${e(x.at)}</div></div>`;
    case "docker":
      return `<div class="ev"><code>docker: ${e(x.what)}</code><pre>${e(pretty(x.data))}</pre><div class="mute">${e(x.at)}</div></div>`;
    case "command":
      return `<div class="ev"><code>$ ${e(x.command)} → exit ${x.exitCode ?? "killed"}</code>${x.stdout ? `<pre>${e(x.stdout)}</pre>` : ""}${x.stderr ? `<pre>${e(x.stderr)}</pre>` : ""}<div class="mute">${e(x.at)}</div></div>`;
    case "note":
      return `<div class="ev">${e(x.text)}</div>`;
  }
}

function coverageTable(reqs: readonly Requirement[]): string {
  if (reqs.length === 0)
    return '<h2>Requirement coverage</h2><p class="mute">No requirement catalogue was loaded.</p>';
  const rows = reqs.map(
    (r) =>
      `<tr><td><code>${e(r.id)}</code></td><td>${r.level}</td><td>${e(r.persona)}</td><td>${r.checklistItem ?? ""}</td><td>${e(r.crId ?? "")}</td><td>${e(r.text)}</td><td class="t-${r.outcome}">${r.outcome}</td><td>${r.checks.map((c) => `<code>${e(c)}</code>`).join("<br>")}</td></tr>`,
  );
  const must = reqs.filter((r) => r.level === "MUST");
  const covered = must.filter((r) => r.checks.length > 0).length;
  return `<h2>Requirement coverage <span class="mute">(${reqs.length} requirements; ${covered}/${must.length} MUSTs exercised in this run)</span></h2><table><tr><th>Id</th><th>Level</th><th>Persona</th><th>Item</th><th>CR-ID</th><th>Requirement</th><th>Outcome</th><th>Checks</th></tr>${rows.join("")}</table>`;
}
