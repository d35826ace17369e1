import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  type InjectEnv,
  POST_RENDERER_FILE,
  postRendererScript,
  writePostRenderer,
} from "./otel-post-renderer.js";

// The transform is exercised as the very script Helm runs: written by writePostRenderer, imported
// for the pure function, and executed with plain node for the stdin/stdout contract.
const OTEL = {
  HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
  GRPC_OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317",
};

let dir: string;
let script: string;
let injectEnv: InjectEnv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "margo-t-postrender-"));
  script = await writePostRenderer(dir, OTEL);
  ({ injectEnv } = (await import(pathToFileURL(script).href)) as { injectEnv: InjectEnv });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

/** Parse as Kubernetes does (YAML 1.1), one object per non-empty document. */
function objects(text: string): Json[] {
  return parseAllDocuments(text, { version: "1.1" })
    .map((d) => d.toJS() as Json | null)
    .filter((o): o is Json => o !== null);
}

function envOf(container: unknown): Array<{ name: string; value?: string }> {
  return ((container as Json).env ?? []) as Array<{ name: string; value?: string }>;
}

function podSpec(o: Json): Json {
  const spec = o.spec as Json;
  if (o.kind === "Pod") return spec;
  if (o.kind === "CronJob") {
    return ((((spec.jobTemplate as Json).spec as Json).template as Json).spec ?? {}) as Json;
  }
  return ((spec.template as Json).spec ?? {}) as Json;
}

const container = (name: string, extra = "") =>
  `      - name: ${name}\n        image: busybox${extra}\n`;

function workload(kind: string): string {
  const containers = `      containers:\n${container("main")}      initContainers:\n${container("init")}`;
  const template = `    metadata:\n      labels: {app: x}\n    spec:\n${containers}`;
  switch (kind) {
    case "Pod":
      return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: main\n    image: busybox\n  initContainers:\n  - name: init\n    image: busybox\n`;
    case "CronJob":
      return `apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: main\n            image: busybox\n          initContainers:\n          - name: init\n            image: busybox\n`;
    default:
      return `apiVersion: apps/v1\nkind: ${kind}\nmetadata:\n  name: w\nspec:\n  template:\n${template}`;
  }
}

const KINDS = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"];

describe("otel post-renderer transform (item 89)", () => {
  it("adds every variable to every container and init container of each workload kind", () => {
    const input = KINDS.map((k) => `---\n# Source: chart/templates/${k}.yaml\n${workload(k)}`).join(
      "",
    );
    const out = objects(injectEnv(input, OTEL));
    expect(out.map((o) => o.kind)).toEqual(KINDS);
    for (const o of out) {
      const spec = podSpec(o);
      for (const key of ["containers", "initContainers"]) {
        const list = spec[key] as unknown[];
        expect(list, `${o.kind} ${key}`).toHaveLength(1);
        expect(envOf(list[0]), `${o.kind} ${key}`).toEqual([
          { name: "HTTP_OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://127.0.0.1:4318" },
          { name: "GRPC_OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://127.0.0.1:4317" },
        ]);
      }
    }
  });

  it("never overrides a variable the chart sets, and keeps the chart's other entries first", () => {
    const input = workload("Deployment").replace(
      container("main"),
      container(
        "main",
        "\n        env:\n        - name: HTTP_OTEL_EXPORTER_OTLP_ENDPOINT\n          value: http://chart:4318\n        - name: SECRET\n          valueFrom: {secretKeyRef: {name: s, key: k}}",
      ),
    );
    const [d] = objects(injectEnv(input, OTEL));
    const main = (podSpec(d as Json).containers as unknown[])[0];
    expect(envOf(main)).toEqual([
      { name: "HTTP_OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://chart:4318" },
      { name: "SECRET", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
      { name: "GRPC_OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://127.0.0.1:4317" },
    ]);
  });

  it("leaves other kinds untouched and keeps YAML 1.1 scalars meaning what they meant", () => {
    const input = [
      "---",
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: c}",
      "data:",
      '  flag: "yes"',
      "---",
      "apiVersion: v1",
      "kind: Service",
      "metadata: {name: s}",
      "spec: {ports: [{port: 80}]}",
      "---",
      workload("Deployment").replace(
        "    spec:\n",
        "    spec:\n      volumes: [{name: v, configMap: {name: c, defaultMode: 0755}}]\n      hostNetwork: no\n",
      ),
    ].join("\n");
    const before = objects(input);
    const after = objects(injectEnv(input, OTEL));
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    const spec = podSpec(after[2] as Json);
    // 0755 is octal (493) and `no` is false in YAML 1.1, as Helm and Kubernetes read them.
    expect(spec.volumes).toEqual([{ name: "v", configMap: { name: "c", defaultMode: 0o755 } }]);
    expect(spec.hostNetwork).toBe(false);
  });

  it("writes values that look like other types as strings, and handles kind List", () => {
    const env = { OTEL_ENABLED: "yes", OTEL_PORT: "4318", OTEL_Q: 'a "b" $c\nd' };
    const input = `apiVersion: v1\nkind: List\nitems:\n- ${workload("Pod").replace(/\n/g, "\n  ").trimEnd()}\n`;
    const [list] = objects(injectEnv(input, env));
    const pod = ((list as Json).items as Json[])[0] as Json;
    expect(envOf((podSpec(pod).containers as unknown[])[0])).toEqual([
      { name: "OTEL_ENABLED", value: "yes" },
      { name: "OTEL_PORT", value: "4318" },
      { name: "OTEL_Q", value: 'a "b" $c\nd' },
    ]);
  });

  it("with no variables the manifests come back with the same content", () => {
    const input = KINDS.map((k) => `---\n${workload(k)}`).join("");
    expect(objects(injectEnv(input, {}))).toEqual(objects(input));
  });

  it("refuses manifests that are not YAML", () => {
    expect(() => injectEnv("kind: Pod\nspec: [unclosed\n", OTEL)).toThrow(/rendered manifests/);
  });
});

describe("the post-renderer executable", () => {
  it("is written with mode 0755 and names the node that runs the agent", async () => {
    expect(script).toBe(join(dir, POST_RENDERER_FILE));
    expect((await stat(script)).mode & 0o777).toBe(0o755);
    const text = await readFile(script, "utf8");
    expect(text.split("\n")[0]).toBe(`#!${process.execPath}`);
    expect(postRendererScript({}, "/y", "/path with space/node").split("\n")[0]).toBe(
      "#!/usr/bin/env node",
    );
  });

  it("reads manifests on stdin and prints them with the variables, as Helm runs it", () => {
    const r = spawnSync(script, [], { input: workload("Deployment"), encoding: "utf8" });
    expect(r.status).toBe(0);
    const [d] = objects(r.stdout);
    const spec = podSpec(d as Json);
    expect(envOf((spec.containers as unknown[])[0]).map((e) => e.name)).toEqual(Object.keys(OTEL));
    expect(envOf((spec.initContainers as unknown[])[0]).map((e) => e.name)).toEqual(
      Object.keys(OTEL),
    );
  });

  it("fails with a message on stderr when the input is broken, so helm fails the install", () => {
    const r = spawnSync(script, [], { input: "a: [b\n", encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("margo otel post-renderer");
    expect(r.stdout).toBe("");
  });
});
