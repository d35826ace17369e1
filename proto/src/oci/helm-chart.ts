import {
  layerAt,
  type PulledHead,
  type PushedArtifact,
  pullDescriptor,
  pullHead,
  pushArtifact,
  tagOf,
} from "./artifact.js";
import type { OciClient } from "./client.js";
import { isRecord, layersOf } from "./manifest.js";
import {
  ANNOTATION_DESCRIPTION,
  ANNOTATION_TITLE,
  ANNOTATION_VERSION,
  HELM_CHART_LAYER_MEDIA_TYPE,
  HELM_CONFIG_MEDIA_TYPE,
} from "./media-types.js";
import { versionToTag } from "./reference.js";
import { validateHelmChartManifest } from "./validate.js";

/**
 * Chart.yaml members in the order Helm serialises its chart metadata into the OCI config, so a
 * chart we push looks like one `helm push` wrote; members Helm does not know are left out as it
 * would.
 */
const HELM_CONFIG_FIELDS = [
  "name",
  "home",
  "sources",
  "version",
  "description",
  "keywords",
  "maintainers",
  "icon",
  "apiVersion",
  "condition",
  "tags",
  "appVersion",
  "deprecated",
  "annotations",
  "kubeVersion",
  "dependencies",
  "type",
] as const;

/** Chart.yaml as parsed; name and version are what the OCI layout needs. */
export type ChartMeta = Record<string, unknown> & { name: string; version: string };

/** helmConfigBytes encodes Chart.yaml fields as Helm's config JSON (empty members omitted). */
export function helmConfigBytes(chart: ChartMeta): Uint8Array {
  const out: Record<string, unknown> = {};
  for (const key of HELM_CONFIG_FIELDS) {
    const v = chart[key];
    if (v === undefined || v === null || v === "" || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (isRecord(v) && Object.keys(v).length === 0) continue;
    out[key] = v;
  }
  return new TextEncoder().encode(JSON.stringify(out));
}

export interface PulledHelmChart extends PulledHead {
  /** The chart .tgz, digest-verified. */
  chartTgz: Uint8Array | undefined;
  /** The config JSON (Chart.yaml fields). */
  chartMeta: Record<string, unknown> | undefined;
}

/**
 * pushHelmChart stores a packaged chart in the standard Helm OCI layout (Margo does not restate
 * it, digest 3.4): Helm config JSON, one chart-content layer, tag = chart version.
 */
export async function pushHelmChart(
  client: OciClient,
  repo: string,
  chartTgz: Uint8Array,
  chartMeta: ChartMeta,
  opts: { tag?: string } = {},
): Promise<PushedArtifact> {
  const annotations: Record<string, string> = {
    [ANNOTATION_TITLE]: chartMeta.name,
    [ANNOTATION_VERSION]: chartMeta.version,
  };
  if (typeof chartMeta.description === "string")
    annotations[ANNOTATION_DESCRIPTION] = chartMeta.description;
  return pushArtifact(client, repo, opts.tag ?? versionToTag(chartMeta.version), {
    config: { bytes: helmConfigBytes(chartMeta), mediaType: HELM_CONFIG_MEDIA_TYPE },
    layers: [{ bytes: chartTgz, mediaType: HELM_CHART_LAYER_MEDIA_TYPE }],
    annotations,
  });
}

/** pullHelmChart pulls a chart, verifies every digest and checks the Helm layout and tag. */
export async function pullHelmChart(
  client: OciClient,
  repo: string,
  reference: string,
): Promise<PulledHelmChart> {
  const { pulled, head } = await pullHead(client, repo, reference);
  const { problems } = head;
  const result: PulledHelmChart = { ...head, chartTgz: undefined, chartMeta: undefined };
  if (!pulled || !isRecord(pulled.manifest)) {
    if (pulled) problems.push(...validateHelmChartManifest(pulled.manifest));
    return result;
  }
  const m = pulled.manifest;
  const configBytes = await pullDescriptor(client, repo, m.config, "/config", problems);
  if (configBytes) {
    try {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(configBytes));
      if (isRecord(parsed)) result.chartMeta = parsed;
    } catch {
      // Reported by the config media-type/shape check below when the config is not Helm's.
    }
  }
  const layers = layersOf(m);
  const index = layers.findIndex(
    (l: unknown) => isRecord(l) && l.mediaType === HELM_CHART_LAYER_MEDIA_TYPE,
  );
  if (index >= 0)
    result.chartTgz = await pullDescriptor(client, repo, layers[index], layerAt(index), problems);
  const version =
    typeof result.chartMeta?.version === "string" ? result.chartMeta.version : undefined;
  problems.unshift(...validateHelmChartManifest(m, { tag: tagOf(reference), version }));
  return result;
}
