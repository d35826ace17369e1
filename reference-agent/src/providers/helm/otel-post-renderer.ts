import { randomBytes } from "node:crypto";
import { rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

/**
 * Item 89 for Helm: a chart has no generic place for container environment, so the OTel
 * variables are added after Helm rendered the chart, through `helm --post-renderer`. Helm pipes the
 * rendered manifests (multi-document YAML) to the post-renderer's stdin and installs what it
 * prints. The post-renderer is a small node script written into the release's work folder at
 * apply time (mode 0755) rather than a file shipped beside this module: the agent may run as one
 * bundled file (dist/margo-agent.mjs), where no source path exists to point Helm at. The
 * variables are baked into the script, so it needs no argument support from Helm (any Helm 3).
 *
 * The script edits the parsed YAML documents rather than converting them: untouched scalars are
 * written back as they were read, in YAML 1.1 as Helm and Kubernetes read them (`0755` stays
 * octal, `yes` stays what it was), so a chart means the same after the pass as before.
 */

/** File name of the post-renderer inside the release's work folder. */
export const POST_RENDERER_FILE = "margo-otel-post-renderer.mjs";

/** The transform the script exports: rendered manifests in, manifests with env out. */
export type InjectEnv = (manifests: string, env: Record<string, string>) => string;

/**
 * The script's source. Plain JavaScript (it runs under plain node, not the agent's loader); its one
 * dependency, the `yaml` package, is loaded from the path the agent resolved, so it does not depend
 * on where the work folder lies. It exports `injectEnv` (the pure transform, tested directly) and
 * runs it on stdin only when executed as a program.
 */
const SCRIPT_BODY = `
import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const YAML = createRequire(import.meta.url)(YAML_PATH);

// Where each workload kind keeps its pod spec.
const POD_SPEC_PATH = {
  Pod: ["spec"],
  Deployment: ["spec", "template", "spec"],
  StatefulSet: ["spec", "template", "spec"],
  DaemonSet: ["spec", "template", "spec"],
  ReplicaSet: ["spec", "template", "spec"],
  ReplicationController: ["spec", "template", "spec"],
  Job: ["spec", "template", "spec"],
  CronJob: ["spec", "jobTemplate", "spec", "template", "spec"],
};

function addEnv(doc, container, env) {
  if (!YAML.isMap(container)) return;
  let list = container.get("env", true);
  if (list === undefined || list === null || (YAML.isScalar(list) && list.value === null)) {
    list = doc.createNode([]);
    container.set("env", list);
  }
  // Anything else than a list is the chart's own mistake: leave it for the API server to refuse.
  if (!YAML.isSeq(list)) return;
  const present = new Set();
  for (const item of list.items) {
    if (YAML.isMap(item)) present.add(String(item.get("name")));
  }
  for (const [name, value] of Object.entries(env)) {
    // A variable the chart sets itself is the chart's decision, never overridden.
    if (!present.has(name)) list.add(doc.createNode({ name, value: String(value) }));
  }
}

function injectInto(doc, node, env) {
  if (!YAML.isMap(node)) return;
  const kind = node.get("kind");
  if (kind === "List") {
    const items = node.get("items", true);
    if (YAML.isSeq(items)) for (const item of items.items) injectInto(doc, item, env);
    return;
  }
  const path = POD_SPEC_PATH[kind];
  if (path === undefined) return;
  const spec = node.getIn(path, true);
  if (!YAML.isMap(spec)) return;
  for (const key of ["initContainers", "containers"]) {
    const containers = spec.get(key, true);
    if (YAML.isSeq(containers)) for (const c of containers.items) addEnv(doc, c, env);
  }
}

export function injectEnv(manifests, env) {
  const docs = YAML.parseAllDocuments(manifests, { version: "1.1" });
  if (!Array.isArray(docs)) return manifests;
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error("rendered manifests: " + doc.errors[0].message);
    if (Object.keys(env).length > 0) injectInto(doc, doc.contents, env);
    doc.directives.docStart = true;
    out.push(doc.toString({ lineWidth: 0 }));
  }
  return out.join("");
}

function main() {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    try {
      process.stdout.write(injectEnv(Buffer.concat(chunks).toString("utf8"), ENV));
    } catch (e) {
      process.stderr.write("margo otel post-renderer: " + e.message + "\\n");
      process.exitCode = 1;
    }
  });
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main();
}
`;

/**
 * postRendererScript returns the executable text: interpreter line, the variables and the `yaml`
 * path as literals, then the transform. Pure, so the text itself is testable.
 */
export function postRendererScript(
  env: Record<string, string>,
  yamlPath: string,
  nodePath: string = process.execPath,
): string {
  // The node that runs the agent runs the script too (PATH may not name one, e.g. under systemd);
  // a path the kernel cannot take as an interpreter line falls back to PATH.
  const interpreter =
    nodePath.length < 120 && !/\s/.test(nodePath) ? nodePath : "/usr/bin/env node";
  return [
    `#!${interpreter}`,
    "// Written by the Margo reference agent: adds the OpenTelemetry variables (item 89) to every",
    "// container of the rendered chart. Regenerated on every apply; do not edit.",
    `const ENV = ${JSON.stringify(env)};`,
    `const YAML_PATH = ${JSON.stringify(yamlPath)};`,
    SCRIPT_BODY,
  ].join("\n");
}

/** Where the agent finds `yaml` (bundled or not, it is a dependency of this package). */
export function yamlModulePath(): string {
  return createRequire(import.meta.url).resolve("yaml");
}

/**
 * writePostRenderer puts the script into `dir` (renamed into place, so a Helm run never executes
 * half a file) and returns its path for `--post-renderer`.
 */
export async function writePostRenderer(dir: string, env: Record<string, string>): Promise<string> {
  const file = join(dir, POST_RENDERER_FILE);
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, postRendererScript(env, yamlModulePath()), { mode: 0o755 });
  await rename(tmp, file);
  return file;
}
