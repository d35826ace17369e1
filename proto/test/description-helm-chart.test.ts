import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ARCHIVE_RULES, type TarEntrySpec, writeTarGz } from "../src/package/archive/index.js";
import { CHART_RULES, validateHelmChart } from "../src/package/chart/index.js";

const CHART_YAML = 'apiVersion: v2\nname: hello\nversion: 1.2.3\nappVersion: "1.0"\n';
const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-hello
  annotations:
    helm.sh/resource-policy: keep
    note: {{ "the lookup function is not used here" | quote }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
        - name: hello
          image: {{ .Values.image }}
          {{- /* lookup would need a cluster */}}
          env:
            - name: LOOKUP_MODE
              value: {{ .Values.lookup | quote }}
`;

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function chartDir(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "margo-chart-"));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

function good(): Record<string, string> {
  return {
    "Chart.yaml": CHART_YAML,
    "values.yaml": "replicas: 1\nimage: busybox\nlookup: none\n",
    "templates/deployment.yaml": DEPLOYMENT,
  };
}

async function errorRules(files: Record<string, string>, opts = {}): Promise<string[]> {
  const r = await validateHelmChart(await chartDir(files), opts);
  return r.problems.filter((p) => p.severity === "error").map((p) => p.rule);
}

describe("validateHelmChart", () => {
  it("accepts a plain v2 chart (lookup as a value name, hook-like prose, resource-policy)", async () => {
    const r = await validateHelmChart(await chartDir(good()), {
      componentName: "hello",
      revision: "1.2.3",
    });
    expect(r.problems).toEqual([]);
    expect(r.chart).toEqual({ apiVersion: "v2", name: "hello", version: "1.2.3" });
  });

  it("reports a missing Chart.yaml, naming a near miss", async () => {
    const files = good();
    delete files["Chart.yaml"];
    files["chart.yml"] = CHART_YAML;
    const r = await validateHelmChart(await chartDir(files));
    expect(r.problems.map((p) => p.rule)).toEqual(["chart.missing-chart-yaml"]);
    expect(r.problems[0]?.message).toContain("chart.yml");
  });

  it("rejects apiVersion v1", async () => {
    const files = { ...good(), "Chart.yaml": CHART_YAML.replace("v2", "v1") };
    expect(await errorRules(files)).toEqual(["chart.api-version"]);
  });

  it.each([
    ['{{ $s := lookup "v1" "Secret" .Release.Namespace "x" }}'],
    ['{{- if (lookup "v1" "ConfigMap" "" "") }}yes{{ end }}'],
    ['{{ lookup "v1" "Namespace" "" "" | toYaml }}'],
  ])("rejects a lookup call: %s", async (line) => {
    const files = { ...good(), "templates/lookup.yaml": `data:\n  x: ${line}\n` };
    expect(await errorRules(files)).toEqual(["chart.lookup"]);
  });

  it.each([
    ['    "helm.sh/hook": pre-install\n'],
    ["    helm.sh/hook: post-upgrade,post-install\n"],
  ])("rejects a hook annotation: %s", async (annotation) => {
    const files = {
      ...good(),
      "templates/job.yaml": `apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\n  annotations:\n${annotation}    "helm.sh/hook-weight": "1"\n`,
    };
    const r = await validateHelmChart(await chartDir(files));
    expect(r.problems.map((p) => p.rule)).toEqual(["chart.hook"]);
    expect(r.problems[0]?.pointer).toBe("chart:templates/job.yaml");
  });

  it("rejects CRDs in crds/ and as templates", async () => {
    const crd =
      "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\n";
    expect(await errorRules({ ...good(), "crds/x.yaml": crd })).toEqual(["chart.crd"]);
    expect(await errorRules({ ...good(), "templates/crd.yaml": crd })).toEqual(["chart.crd"]);
  });

  it.each([
    ["flow-map annotations", 'metadata:\n  annotations: {"helm.sh/hook": post-install}\n'],
    [
      "single-quoted key in a flow map",
      "metadata: {name: x, annotations: {'helm.sh/hook': test}}\n",
    ],
    [
      "JSON form",
      '{"kind": "Job", "metadata": {"annotations": {"helm.sh/hook": "pre-install"}}}\n',
    ],
    ["templated value", "metadata:\n  annotations:\n    helm.sh/hook: {{ .Values.when }}\n"],
    ["merge key", "x: &a {helm.sh/hook: pre-install}\nmetadata:\n  annotations:\n    <<: *a\n"],
    ["a List item", "kind: List\nitems:\n  - metadata: {annotations: {helm.sh/hook: test}}\n"],
    [
      "a key printed by an action",
      'metadata:\n  annotations:\n    {{ "helm.sh/hook" }}: pre-install\n',
    ],
    [
      "a document that does not parse",
      "metadata:\n  annotations: {{{ .x }}\n    helm.sh/hook: pre-install\n  : [\n",
    ],
  ])("rejects a hook spelled as %s", async (_what, text) => {
    const r = await validateHelmChart(await chartDir({ ...good(), "templates/h.yaml": text }));
    expect(r.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["chart.hook", "chart:templates/h.yaml"],
    ]);
  });

  it.each([
    [
      "a trailing comment",
      "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition # a CRD\n",
    ],
    ["JSON form", '{"kind": "CustomResourceDefinition", "metadata": {"name": "x"}}\n'],
    ["a quoted key", "\"kind\": 'CustomResourceDefinition'\n"],
  ])("rejects a CRD template with %s", async (_what, text) => {
    expect(await errorRules({ ...good(), "templates/c.yaml": text })).toEqual(["chart.crd"]);
  });

  it("reports hook and CRD of a JSON-form template, naming the document", async () => {
    const text =
      'kind: ConfigMap\n---\n{"kind": "CustomResourceDefinition", "metadata": {"annotations": {"helm.sh/hook": "pre-install"}}}\n';
    const r = await validateHelmChart(await chartDir({ ...good(), "templates/j.yaml": text }));
    expect(r.problems.map((p) => p.rule).sort()).toEqual(["chart.crd", "chart.hook"]);
    for (const p of r.problems) expect(p.message).toContain("document 2, line 3");
  });

  it("does not count hook-like text that is not a hook", async () => {
    const text = `kind: ConfigMap
metadata:
  annotations:
    helm.sh/hook-weight: "1"
    note: "helm.sh/hook: pre-install"
data:
  crd.txt: |
    kind: CustomResourceDefinition
    helm.sh/hook: test
  {{- if .Values.x }}
  x: {{ .Values.x | quote }}
  {{- end }}
`;
    expect(await errorRules({ ...good(), "templates/cm.yaml": text })).toEqual([]);
  });

  it("checks name and version against the component", async () => {
    expect(await errorRules(good(), { componentName: "other" })).toEqual(["chart.name-mismatch"]);
    expect(await errorRules(good(), { revision: "1.2.4" })).toEqual(["chart.version-mismatch"]);
    const build = { ...good(), "Chart.yaml": CHART_YAML.replace("1.2.3", "1.2.3+b.1") };
    expect(await errorRules(build, { revision: "1.2.3_b.1" })).toEqual([]);
  });

  it("checks subcharts too", async () => {
    const files = {
      ...good(),
      "charts/sub/Chart.yaml": "apiVersion: v1\nname: sub\nversion: 0.1.0\n",
      "charts/sub/templates/hook.yaml": "metadata:\n  annotations:\n    helm.sh/hook: test\n",
    };
    const r = await validateHelmChart(await chartDir(files));
    expect(r.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["chart.api-version", "chart:charts/sub/Chart.yaml#/apiVersion"],
      ["chart.hook", "chart:charts/sub/templates/hook.yaml"],
    ]);
  });

  it("reads a packaged chart (.tgz) the same way", async () => {
    const entries = Object.entries({
      ...good(),
      "templates/job.yaml": "metadata:\n  annotations:\n    helm.sh/hook: pre-delete\n",
    }).map(([path, content]) => ({ path: `hello/${path}`, content }));
    const tgz = await writeTarGz(entries);
    const r = await validateHelmChart(tgz, { componentName: "hello" });
    expect(r.chart?.name).toBe("hello");
    expect(r.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["chart.hook", "chart.tgz:templates/job.yaml"],
    ]);
    const corrupt = await validateHelmChart(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    expect(corrupt.problems.map((p) => p.rule)).toContain("archive.corrupt");
    expect(corrupt.problems.map((p) => p.rule)).toContain("chart.missing-chart-yaml");
  });

  it("reports chart archive entries a safe reader must refuse, and scans what links point at", async () => {
    const hook = "metadata:\n  annotations:\n    helm.sh/hook: pre-install\n";
    const entries: TarEntrySpec[] = [
      ...Object.entries(good()).map(([path, content]) => ({ path: `hello/${path}`, content })),
      { path: "hello/../evil.yaml", content: hook },
      { path: "/hello/templates/abs.yaml", content: hook },
      { path: "hello/templates/out.yaml", type: "symlink", linkTarget: "../../../etc/passwd" },
      { path: "hello/templates/hard.yaml", type: "hardlink", linkTarget: "other/x.yaml" },
      { path: "hello/templates/fifo", type: "fifo" },
      { path: "hello/files/hidden.txt", content: hook },
      { path: "hello/templates/alias.yaml", type: "symlink", linkTarget: "../files/hidden.txt" },
    ];
    const r = await validateHelmChart(await writeTarGz(entries), { componentName: "hello" });
    expect(r.problems.map((p) => [p.rule, p.pointer]).sort()).toEqual(
      [
        ["archive.path-traversal", "chart.tgz:hello/../evil.yaml"],
        ["archive.absolute-path", "chart.tgz:/hello/templates/abs.yaml"],
        ["archive.link-escape", "chart.tgz:hello/templates/out.yaml"],
        ["archive.link-escape", "chart.tgz:hello/templates/hard.yaml"],
        ["archive.special-file", "chart.tgz:hello/templates/fifo"],
        ["chart.hook", "chart.tgz:templates/alias.yaml"],
      ].sort(),
    );
    for (const p of r.problems)
      expect(ARCHIVE_RULES.map((a) => a.id)).toContain(
        p.rule.startsWith("archive.") ? p.rule : "archive.corrupt",
      );
  });

  it("has a text for every rule", () => {
    expect(CHART_RULES.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        "chart.missing-chart-yaml",
        "chart.api-version",
        "chart.lookup",
        "chart.hook",
        "chart.crd",
        "chart.name-mismatch",
      ]),
    );
  });
});
