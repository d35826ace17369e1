/**
 * Writes the selected report formats into one folder under fixed names (report.json,
 * report.xml, report.html), so scripts and CI know where to look without configuration.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RunReport } from "../core/types.js";
import { HTML_REPORT_FILE, renderHtmlReport } from "./html.js";
import { JSON_REPORT_FILE, renderJsonReport } from "./json.js";
import { JUNIT_REPORT_FILE, renderJunitReport } from "./junit.js";

export type ReportFormat = "json" | "junit" | "html";

/** Write each format; returns the paths written, in format order. */
export async function writeReports(
  report: RunReport,
  dir: string,
  formats: readonly ReportFormat[],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const f of new Set(formats)) {
    const [file, text] =
      f === "json"
        ? [JSON_REPORT_FILE, renderJsonReport(report)]
        : f === "junit"
          ? [JUNIT_REPORT_FILE, renderJunitReport(report)]
          : [HTML_REPORT_FILE, renderHtmlReport(report)];
    const path = join(dir, file);
    await writeFile(path, text);
    written.push(path);
  }
  return written;
}
