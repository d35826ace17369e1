import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Problem, problem } from "../../problem.js";
import { readTarGz, resolveInside, splitArchivePath, type TarEntry } from "../archive/index.js";
import { findHooksAndCrds } from "./template-manifests.js";

/** What validateHelmChart learned about the chart; name/version are absent if Chart.yaml is bad. */
export interface HelmChartResult {
  problems: Problem[];
  chart?: { apiVersion?: string; name?: string; version?: string };
}

export interface HelmChartOptions {
  /** The Margo component name; the chart's name must equal it. */
  componentName?: string;
  /** The component's revision; the chart's version must equal it (with _ read as +). */
  revision?: string;
}

/** A chart as relative path -> bytes, whether it came from a directory or a .tgz. */
type ChartFiles = Map<string, Uint8Array>;

/** Caps how deep packaged subcharts are opened, so a chart nesting itself cannot loop forever. */
const MAX_SUBCHART_DEPTH = 5;

async function readChartDir(dir: string): Promise<ChartFiles> {
  const files: ChartFiles = new Map();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, relPath));
      // Symlinks are not followed: a chart directory is source, and following links could read
      // outside it.
      if (st.isDirectory()) await walk(relPath);
      else if (st.isFile()) files.set(relPath, await readFile(join(dir, relPath)));
    }
  };
  await walk("");
  return files;
}

/**
 * Reads a packaged chart, stripping the one top directory Helm packs it under. Nothing is
 * dropped silently: entries a safe reader must refuse are reported with the archive rules
 * (the archive module's own path and link resolution, so chart and Compose Archive agree on
 * what "inside" means), special files are reported by readTarGz itself, and links that stay
 * inside the chart are scanned as their target's content, so a template cannot hide behind one.
 */
async function readChartTgz(
  bytes: Uint8Array,
  label: string,
): Promise<{ files: ChartFiles; problems: Problem[] }> {
  const read = await readTarGz(bytes);
  const problems = read.problems.map((p) => ({
    ...p,
    pointer: p.pointer.replace(/^archive:/, `${label}:`),
  }));
  const content = new Map<string, Uint8Array>();
  const symlinks = new Map<string, string>();
  const links: { entry: TarEntry; segments: string[] }[] = [];
  for (const entry of read.entries) {
    const at = `${label}:${entry.path}`;
    const split = splitArchivePath(entry.path);
    if (split.nul) problems.push(problem("archive.corrupt", at, "path contains a NUL byte"));
    else if (split.absolute)
      problems.push(problem("archive.absolute-path", at, "chart entry path is absolute"));
    else if (split.traversal)
      problems.push(problem("archive.path-traversal", at, "chart entry path contains '..'"));
    else if (entry.type === "file") content.set(split.segments.join("/"), entry.content ?? EMPTY);
    else if (entry.type === "symlink" || entry.type === "hardlink") {
      if (entry.type === "symlink") symlinks.set(split.segments.join("/"), entry.linkTarget ?? "");
      links.push({ entry, segments: split.segments });
    }
  }
  for (const { entry, segments } of links) {
    const target = entry.linkTarget ?? "";
    let resolved: string[] | undefined;
    if (entry.type === "symlink") {
      resolved = target === "" ? undefined : resolveInside(segments.slice(0, -1), target, symlinks);
    } else {
      const t = splitArchivePath(target);
      const inside = !t.absolute && !t.traversal && !t.nul && t.segments[0] === segments[0];
      resolved = inside ? t.segments : undefined;
    }
    if (resolved === undefined) {
      problems.push(
        problem(
          "archive.link-escape",
          `${label}:${entry.path}`,
          `${entry.type} target "${target}" resolves outside the chart's top directory`,
        ),
      );
      continue;
    }
    const body = content.get(resolved.join("/"));
    if (body) content.set(segments.join("/"), body);
  }
  const files: ChartFiles = new Map();
  for (const [key, body] of content) {
    const parts = key.split("/");
    if (parts.length >= 2) files.set(parts.slice(1).join("/"), body);
  }
  return { files, problems };
}

const EMPTY = new Uint8Array();

const decoder = new TextDecoder();

/** Strips template comments and quoted strings so "lookup" in prose or data does not count. */
function actionsOf(template: string): string[] {
  const actions: string[] = [];
  for (const m of template.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
    const body = (m[1] ?? "")
      .replace(/^-?\s*\/\*[\s\S]*?\*\/\s*-?$/, "")
      .replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '""');
    actions.push(body);
  }
  return actions;
}

/** `lookup` called as a function: at the start of an action, after "(", "|" or whitespace. */
const LOOKUP_CALL = /(?:^|[\s(|=])lookup(?=\s|\)|$)/;

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split("\n").length;
}

function checkTemplates(files: ChartFiles, at: (p: string) => string, out: Problem[]): void {
  for (const [path, bytes] of files) {
    if (!path.startsWith("templates/")) continue;
    const text = decoder.decode(bytes);
    if (actionsOf(text).some((a) => LOOKUP_CALL.test(a))) {
      const idx = text.search(/\{\{[^}]*\blookup\b/);
      out.push(
        problem(
          "chart.lookup",
          at(path),
          `template calls lookup${idx >= 0 ? ` (line ${lineOf(text, idx)})` : ""}: devices may render charts without a cluster to query`,
        ),
      );
    }
    for (const f of findHooksAndCrds(text)) {
      const where = `document ${f.document}, line ${f.line}${VIA[f.via]}`;
      out.push(
        f.kind === "hook"
          ? problem(
              "chart.hook",
              at(path),
              `template declares a Helm hook (helm.sh/hook, ${where}): hooks do not run when a device renders and applies`,
            )
          : problem(
              "chart.crd",
              at(path),
              `template defines a CustomResourceDefinition (${where}): CRDs must not be managed through the chart`,
            ),
      );
    }
  }
}

const VIA = {
  parsed: "",
  text: "; the document does not parse, so it was matched as text",
  action: "; printed by a template action",
} as const;

async function checkChart(
  files: ChartFiles,
  at: (path: string) => string,
  opts: HelmChartOptions,
  depth: number,
  out: Problem[],
): Promise<HelmChartResult["chart"]> {
  let chart: HelmChartResult["chart"];
  const chartYaml = files.get("Chart.yaml");
  if (!chartYaml) {
    const other = [...files.keys()].find((k) => /^chart\.ya?ml$/i.test(k));
    out.push(
      problem(
        "chart.missing-chart-yaml",
        at("Chart.yaml"),
        other ? `found ${other}; Helm only reads Chart.yaml` : "no Chart.yaml at the chart root",
      ),
    );
  } else {
    let meta: unknown;
    try {
      meta = parseYaml(decoder.decode(chartYaml), { uniqueKeys: true, maxAliasCount: 100 });
    } catch (err) {
      out.push(
        problem(
          "chart.chart-yaml-syntax",
          at("Chart.yaml"),
          `Chart.yaml is not valid YAML: ${(err as Error).message.split("\n")[0]}`,
        ),
      );
    }
    if (meta !== undefined) {
      const m = (meta && typeof meta === "object" && !Array.isArray(meta) ? meta : {}) as Record<
        string,
        unknown
      >;
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      chart = {
        ...(str(m.apiVersion) !== undefined && { apiVersion: str(m.apiVersion) }),
        ...(str(m.name) !== undefined && { name: str(m.name) }),
        ...(m.version !== undefined && { version: String(m.version) }),
      };
      if (typeof m.name !== "string" || m.version === undefined)
        out.push(
          problem(
            "chart.chart-yaml-syntax",
            at("Chart.yaml"),
            "Chart.yaml needs a string name and a version",
          ),
        );
      if (m.apiVersion !== "v2")
        out.push(
          problem(
            "chart.api-version",
            at("Chart.yaml#/apiVersion"),
            `apiVersion is ${JSON.stringify(m.apiVersion ?? null)}; Margo accepts Chart apiVersion v2 only`,
          ),
        );
      if (opts.componentName !== undefined && chart.name !== opts.componentName)
        out.push(
          problem(
            "chart.name-mismatch",
            at("Chart.yaml#/name"),
            `chart name ${JSON.stringify(chart.name ?? null)} differs from component name ${JSON.stringify(opts.componentName)}`,
          ),
        );
      if (
        opts.revision !== undefined &&
        chart.version !== undefined &&
        chart.version !== opts.revision.replaceAll("_", "+")
      )
        out.push(
          problem(
            "chart.version-mismatch",
            at("Chart.yaml#/version"),
            `chart version ${chart.version} differs from component revision ${opts.revision}`,
          ),
        );
    }
  }
  const crdFiles = [...files.keys()].filter((k) => k.startsWith("crds/"));
  if (crdFiles.length > 0)
    out.push(
      problem(
        "chart.crd",
        at("crds/"),
        `chart ships CRDs in crds/ (${crdFiles.length} file(s)); Margo charts must not manage CRDs`,
      ),
    );
  checkTemplates(files, at, out);
  // Subcharts render with the parent, so their hooks, lookups and CRDs count too.
  if (depth < MAX_SUBCHART_DEPTH) {
    const subdirs = new Set<string>();
    for (const k of files.keys()) {
      const m = /^charts\/([^/]+)\/(.+)$/.exec(k);
      if (m?.[1] && m[2]) subdirs.add(m[1]);
    }
    for (const sub of [...subdirs].sort()) {
      const prefix = `charts/${sub}/`;
      const subFiles: ChartFiles = new Map();
      for (const [k, v] of files) if (k.startsWith(prefix)) subFiles.set(k.slice(prefix.length), v);
      await checkChart(subFiles, (p) => at(prefix + p), {}, depth + 1, out);
    }
    for (const [k, v] of files) {
      if (!/^charts\/[^/]+\.tgz$/.test(k)) continue;
      const nested = await readChartTgz(v, at(k));
      out.push(...nested.problems);
      await checkChart(nested.files, (p) => `${at(k)}!${p}`, {}, depth + 1, out);
    }
  }
  return chart;
}

/**
 * Checks a Helm chart, given as a chart directory or as packaged .tgz bytes, against the
 * restrictions Margo puts on Helm components (digest 3.4): Chart apiVersion v2, no lookup, no
 * hooks, no CRDs, and (when a component is given) name and version matching the component.
 * Returns every problem; pointers are "<chart>:<path in chart>".
 */
export async function validateHelmChart(
  input: string | Uint8Array,
  opts: HelmChartOptions = {},
): Promise<HelmChartResult> {
  const problems: Problem[] = [];
  let files: ChartFiles;
  const label = typeof input === "string" ? "chart" : "chart.tgz";
  if (typeof input === "string") {
    try {
      files = await readChartDir(input);
    } catch (err) {
      return {
        problems: [
          problem(
            "chart.missing-chart-yaml",
            `${label}:Chart.yaml`,
            `cannot read chart directory ${input}: ${(err as Error).message}`,
          ),
        ],
      };
    }
  } else {
    const read = await readChartTgz(input, label);
    problems.push(...read.problems);
    files = read.files;
  }
  const chart = await checkChart(files, (p) => `${label}:${p}`, opts, 0, problems);
  return chart ? { problems, chart } : { problems };
}
