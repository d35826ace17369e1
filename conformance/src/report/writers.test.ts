import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderHtmlReport } from "./html.js";
import { parseJsonReport, renderJsonReport } from "./json.js";
import { renderJunitReport, xmlEscape } from "./junit.js";
import { createProgressPrinter, formatCheckLine, formatSummary } from "./progress.js";
import { sampleReport } from "./sample-report.test-support.js";
import { writeReports } from "./write.js";

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
function decode(s: string, where: string): string {
  if (/[<]/.test(s)) throw new Error(`raw '<' in ${where}`);
  return s.replace(/&([^;]*);|&/g, (m, name: string | undefined) => {
    if (name === undefined) throw new Error(`bare '&' in ${where}`);
    if (name in ENTITY) return ENTITY[name] as string;
    if (/^#\d+$/.test(name)) return String.fromCodePoint(Number(name.slice(1)));
    throw new Error(`unknown entity ${m} in ${where}`);
  });
}

/** A strict little XML parser: enough to prove well-formedness (nesting, quoting, entities, allowed chars). */
function parseXml(xml: string): XmlElement {
  if (!xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>'))
    throw new Error("no XML declaration");
  for (const ch of xml) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x20 && cp !== 9 && cp !== 10 && cp !== 13)
      throw new Error(`control character U+${cp.toString(16)}`);
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error("lone surrogate");
  }
  const body = xml.slice(xml.indexOf("?>") + 2);
  const root: XmlElement = { name: "#root", attrs: {}, children: [], text: "" };
  const stack = [root];
  const re = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.-]+="[^"]*")*)\s*(\/?)>|([^<]+)|(<)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < body.length) {
    re.lastIndex = pos;
    m = re.exec(body);
    if (!m) throw new Error(`cannot parse at ${pos}: ${body.slice(pos, pos + 40)}`);
    pos = re.lastIndex;
    const top = stack[stack.length - 1] as XmlElement;
    if (m[6]) throw new Error(`stray '<' at ${pos}: ${body.slice(pos - 1, pos + 40)}`);
    if (m[5] !== undefined) {
      top.text += decode(m[5], top.name);
      continue;
    }
    const [, close, name, attrText, selfClose] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (close) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w.-]+)="([^"]*)"/g)) {
      if ((a[1] as string) in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1] as string] = decode(a[2] as string, `${name}@${a[1]}`);
    }
    const el: XmlElement = { name, attrs, children: [], text: "" };
    top.children.push(el);
    if (!selfClose) stack.push(el);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]?.name}>`);
  if (root.children.length !== 1 || root.text.trim() !== "")
    throw new Error("not exactly one root element");
  return root.children[0] as XmlElement;
}

const all = (el: XmlElement, name: string): XmlElement[] =>
  [el.name === name ? [el] : [], ...el.children.map((c) => all(c, name))].flat();

describe("JUnit report", () => {
  it("is well-formed XML with a testsuite per suite and a testcase per check", () => {
    const report = sampleReport();
    const root = parseXml(renderJunitReport(report));
    expect(root.name).toBe("testsuites");
    expect(root.attrs).toMatchObject({ tests: "5", failures: "2", errors: "1", skipped: "1" });
    expect(all(root, "testsuite").map((s) => s.attrs.name)).toEqual(["wfm", "device", "package"]);
    const cases = all(root, "testcase");
    expect(cases.map((c) => c.attrs.name)).toEqual(report.checks.map((c) => c.id));
    const fail = cases.find((c) => c.attrs.name === "wfm.errors.problem-json") as XmlElement;
    const f = all(fail, "failure")[0];
    expect(f?.attrs.message).toContain("<script>alert(\"x\")</script> & 'quotes' ]]>");
    expect(f?.attrs.type).toBe("CheckFailed");
    expect(
      all(fail, "property")
        .filter((p) => p.attrs.name === "requirement")
        .map((p) => p.attrs.value),
    ).toEqual(["wfm-039"]);
    expect(
      all(cases.find((c) => c.attrs.name === "wfm.status.known") as XmlElement, "failure")[0]?.attrs
        .type,
    ).toBe("KnownFailing");
    expect(
      all(cases.find((c) => c.attrs.name === "device.reconcile.order") as XmlElement, "error")[0]
        ?.attrs.message,
    ).toContain("timed out");
    expect(
      all(cases.find((c) => c.attrs.name === "package.oci.tag") as XmlElement, "skipped")[0]?.attrs
        .message,
    ).toBe("no OCI source");
    expect(all(cases[0] as XmlElement, "system-out")[0]?.text).toBe("a note");
  });

  it("the checker itself refuses broken XML", () => {
    expect(() => parseXml('<?xml version="1.0" encoding="UTF-8"?><a><b></a>')).toThrow();
    expect(() => parseXml('<?xml version="1.0" encoding="UTF-8"?><a>x & y</a>')).toThrow(
      /bare '&'/,
    );
    expect(() => parseXml(`<?xml version="1.0" encoding="UTF-8"?><a>${"\u0001"}</a>`)).toThrow(
      /control/,
    );
    expect(xmlEscape("a\u0001b\ud800c<")).toBe("a\ufffdb\ufffdc&lt;");
  });
});

describe("HTML report", () => {
  it("names every check, has no external asset or link, and escapes report strings", () => {
    const report = sampleReport();
    const html = renderHtmlReport(report);
    for (const c of report.checks) expect(html).toContain(c.id);
    expect(html).not.toMatch(/\b(src|href|action)\s*=/i);
    expect(html).not.toMatch(/@import|url\(/i);
    expect(html).not.toContain('<script>alert("x")</script>');
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("Not conformant");
    // requirement details shown with the check, coverage table present
    expect(html).toContain("MI-015");
    expect(html).toContain("Requirement coverage");
    expect(html).toContain("not-run");
    // evidence pretty-printed
    expect(html).toContain("&quot;manifestVersion&quot;: &quot;1&quot;");
    expect(html.match(/<script>/g)).toHaveLength(1);
  });

  it("never pretty-prints a body whose big integers JSON.parse would round", () => {
    const report = sampleReport();
    const ev = report.checks[0]?.evidence[0];
    if (ev?.kind !== "http" || !ev.response?.body) throw new Error("sample changed");
    ev.response.body.text = '{"manifestVersion":18446744073709551615}';
    const html = renderHtmlReport(report);
    expect(html).toContain("18446744073709551615");
    expect(html).not.toContain("18446744073709552000");
  });

  it("says conformant when it is", () => {
    const report = sampleReport();
    report.summary.conformant = true;
    expect(renderHtmlReport(report)).toContain('class="banner yes">Conformant');
  });
});

describe("JSON report and writeReports", () => {
  it("round-trips, refuses other versions, and writes the chosen formats under fixed names", async () => {
    const report = sampleReport();
    const back = parseJsonReport(renderJsonReport(report));
    expect(back.checks.map((c) => c.id)).toEqual(report.checks.map((c) => c.id));
    expect(() => parseJsonReport('{"reportVersion":"2.0"}')).toThrow(/reportVersion/);
    const dir = await mkdtemp(join(tmpdir(), "margo-conf-report-"));
    const written = await writeReports(report, join(dir, "out"), ["json", "html"]);
    expect(written.map((p) => p.slice(dir.length))).toEqual([
      "/out/report.json",
      "/out/report.html",
    ]);
    expect((await readdir(join(dir, "out"))).sort()).toEqual(["report.html", "report.json"]);
    expect(JSON.parse(await readFile(join(dir, "out/report.json"), "utf8")).reportVersion).toBe(
      "1.0",
    );
  });
});

describe("progress", () => {
  it("prints one line per check, the message for non-pass, colours only when asked", () => {
    const r = sampleReport().checks;
    expect(formatCheckLine(r[0] as never)).toBe("PASS  wfm.manifest.etag-is-body-digest (12 ms)");
    expect(formatCheckLine(r[2] as never)).toBe(
      "FAIL  wfm.status.known (12 ms) (known failing)\n      known [wfm-039]",
    );
    expect(formatCheckLine(r[0] as never, true)).toContain("\x1b[32m");
    expect(formatCheckLine(r[0] as never)).not.toContain("\x1b[");
  });
  it("prints the summary block", () => {
    expect(formatSummary(sampleReport())).toContain(
      "1 pass, 2 fail (1 known), 1 error, 1 skip; core: 1/4; conformant: no",
    );
  });
  it("quiet mode keeps only failures and errors", () => {
    const lines: string[] = [];
    const p = createProgressPrinter({ write: (s) => lines.push(s), quiet: true });
    for (const result of sampleReport().checks) p({ type: "check-done", result });
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["FAIL", "FAIL", "ERROR"]);
  });
});
