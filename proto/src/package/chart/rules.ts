/**
 * Rules of the Helm chart check (digest 3.4, checklist 75). Margo lets a device render charts
 * with `helm template` or Kustomize instead of talking to the Kubernetes API, so a chart must
 * not depend on anything only a live `helm install` provides.
 */
export interface ChartRule {
  readonly id: string;
  readonly text: string;
  readonly source: string;
}

export const CHART_RULES: readonly ChartRule[] = [
  {
    id: "chart.missing-chart-yaml",
    text: "A Helm chart must have Chart.yaml at its root.",
    source: "digest 3.4 (Helm chart format)",
  },
  {
    id: "chart.chart-yaml-syntax",
    text: "Chart.yaml must be one well-formed YAML mapping with string name and version.",
    source: "digest 3.4 (Helm chart format)",
  },
  {
    id: "chart.api-version",
    text: "Chart.yaml apiVersion must be v2 (Helm 3/4 charts only).",
    source: "digest 2.2 (type helm), 3.4, checklist 75",
  },
  {
    id: "chart.lookup",
    text: "Templates must not use the lookup function (devices may render without a cluster).",
    source: "digest 3.4, checklist 75",
  },
  {
    id: "chart.hook",
    text: "Templates must not declare Helm hooks (helm.sh/hook annotation).",
    source: "digest 3.4, checklist 75",
  },
  {
    id: "chart.crd",
    text: "Charts must not manage CRDs (no crds/ directory, no CustomResourceDefinition manifest).",
    source: "digest 3.4, checklist 75",
  },
  {
    id: "chart.name-mismatch",
    text: "Chart.yaml name must equal the component name (the component name is the chart name).",
    source: "digest 2.2 (Component name)",
  },
  {
    id: "chart.version-mismatch",
    text: "Chart.yaml version must equal the component revision (the OCI tag, _ read as +).",
    source: "digest 2.2 (revision), 3.4",
  },
];
