import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { packComposeArchive } from "../package/archive/index.js";
import { type Problem, problem } from "../problem.js";
import { DESCRIPTION_FILE, pullApplicationPackage, pushApplicationPackage } from "./app-package.js";
import type { PushedArtifact } from "./artifact.js";
import type { OciClient } from "./client.js";
import { pullComposeComponent, pushComposeComponent } from "./compose-component.js";
import { type ChartMeta, pullHelmChart, pushHelmChart } from "./helm-chart.js";
import { isRecord } from "./manifest.js";
import { parseOciRepositoryUri, versionToTag } from "./reference.js";

/**
 * Deliberate deviations applied when publishing; OCI-stage broken fixtures declare them in their
 * publish.yaml so one valid package can be published in exactly one broken way.
 */
export interface PublishOverrides {
  /**
   * Restricts the component overrides (and dropAnnotations) to this component; without it they
   * apply to every Compose component and dropAnnotations to the package layers too.
   */
  component?: string;
  /** Layer media type of every Compose component. */
  componentMediaType?: string;
  /** artifactType of every Compose component manifest. */
  componentArtifactType?: string;
  /** artifactType of the package manifest. */
  packageArtifactType?: string;
  /** Tag of the package (instead of metadata.version). */
  tag?: string;
  /** Tag of every component (instead of its revision). */
  componentTag?: string;
  /** org.margo.component.version written on every component (instead of its revision). */
  componentVersion?: string;
  /** Annotation keys left off every package and component layer. */
  dropAnnotations?: string[];
}

/** A component named by the description, as found in its deployment profiles. */
export interface DescribedComponent {
  name: string;
  type: "compose" | "helm";
  /** `oci://host/path` as written. */
  repository: string;
  revision: string;
}

export interface PublishedComponent extends DescribedComponent {
  /** The repository path actually pushed to (after `mapRepository`). */
  pushedRepository: string;
  pushed: PushedArtifact;
  /** Archive or chart bytes that were pushed, to compare after pulling back. */
  content: Uint8Array;
}

export interface PublishedPackage {
  appId: string | undefined;
  version: string | undefined;
  components: PublishedComponent[];
  pkg: PushedArtifact;
}

export interface PublishOptions {
  /** Repository of the package itself. */
  packageRepo: string;
  overrides?: PublishOverrides;
  /**
   * Maps a component's repository path (from its oci:// URI) to where it is pushed; tests use it
   * to keep every run in its own namespace. Default: the path as written.
   */
  mapRepository?: (path: string) => string;
  /** Supplies a component's archive bytes instead of packing components/<name>/ (hostile fixtures). */
  componentArchive?: (component: string) => Promise<Uint8Array | undefined>;
}

/** describedComponents lists the compose and helm components of a description, deduplicated. */
export function describedComponents(descriptionText: string): DescribedComponent[] {
  const doc: unknown = parseYaml(descriptionText);
  const out: DescribedComponent[] = [];
  const seen = new Set<string>();
  const profiles =
    isRecord(doc) && Array.isArray(doc.deploymentProfiles) ? doc.deploymentProfiles : [];
  for (const profile of profiles) {
    if (!isRecord(profile) || (profile.type !== "compose" && profile.type !== "helm")) continue;
    const components = Array.isArray(profile.components) ? profile.components : [];
    for (const c of components) {
      if (!isRecord(c) || typeof c.name !== "string" || !isRecord(c.properties)) continue;
      const { repository, revision } = c.properties;
      if (typeof repository !== "string" || typeof revision !== "string") continue;
      const key = `${profile.type} ${repository} ${revision}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: c.name, type: profile.type, repository, revision });
    }
  }
  return out;
}

/**
 * packHelmChartDir packs a chart directory the way `helm package` lays it out (one top directory
 * named like the chart) with the deterministic packer, and returns Chart.yaml as parsed.
 */
export async function packHelmChartDir(
  dir: string,
): Promise<{ tgz: Uint8Array; chart: ChartMeta }> {
  const parsed: unknown = parseYaml(await readFile(join(dir, "Chart.yaml"), "utf8"));
  if (!isRecord(parsed) || typeof parsed.name !== "string" || typeof parsed.version !== "string") {
    throw new Error(`${dir}/Chart.yaml has no name or version`);
  }
  const chart = parsed as ChartMeta;
  return { tgz: await packComposeArchive(dir, { topDir: chart.name }), chart };
}

/**
 * publishPackageDir publishes a fixture-style package: each component from components/<name>/
 * (Compose Archive or Helm chart) to the repository its description names, tagged with its
 * revision, then the package itself. Blobs the registry already holds are not uploaded again.
 */
export async function publishPackageDir(
  client: OciClient,
  dir: string,
  opts: PublishOptions,
): Promise<PublishedPackage> {
  const o = opts.overrides ?? {};
  const text = await readFile(join(dir, DESCRIPTION_FILE), "utf8");
  const doc: unknown = parseYaml(text);
  const metadata = isRecord(doc) && isRecord(doc.metadata) ? doc.metadata : {};
  const components: PublishedComponent[] = [];
  for (const c of describedComponents(text)) {
    const path = parseOciRepositoryUri(c.repository).repository;
    const pushedRepository = opts.mapRepository ? opts.mapRepository(path) : path;
    const source = join(dir, "components", c.name);
    const scoped = o.component === undefined || o.component === c.name;
    if (c.type === "compose") {
      const archive =
        (await opts.componentArchive?.(c.name)) ??
        (await packComposeArchive(source, { topDir: c.name }));
      const version = (scoped ? o.componentVersion : undefined) ?? c.revision;
      const pushed = await pushComposeComponent(
        client,
        pushedRepository,
        version,
        archive,
        { title: `${c.name}-${c.revision}.tar.gz` },
        scoped
          ? {
              tag: o.componentTag ?? versionToTag(c.revision),
              ...(o.componentArtifactType ? { artifactType: o.componentArtifactType } : {}),
              ...(o.componentMediaType ? { layerMediaType: o.componentMediaType } : {}),
              ...(o.dropAnnotations ? { dropAnnotations: o.dropAnnotations } : {}),
            }
          : {},
      );
      components.push({ ...c, pushedRepository, pushed, content: archive });
    } else {
      const { tgz, chart } = await packHelmChartDir(source);
      const pushed = await pushHelmChart(client, pushedRepository, tgz, chart, {
        tag: (scoped ? o.componentTag : undefined) ?? versionToTag(c.revision),
      });
      components.push({ ...c, pushedRepository, pushed, content: tgz });
    }
  }
  const pkg = await pushApplicationPackage(client, opts.packageRepo, dir, {
    ...(o.tag ? { tag: o.tag } : {}),
    ...(o.packageArtifactType ? { artifactType: o.packageArtifactType } : {}),
    ...(o.dropAnnotations && o.component === undefined
      ? { dropAnnotations: o.dropAnnotations }
      : {}),
  });
  return {
    appId: isRecord(doc) && typeof doc.id === "string" ? doc.id : undefined,
    version: typeof metadata.version === "string" ? metadata.version : undefined,
    components,
    pkg,
  };
}

/**
 * verifyPublished pulls back everything publishPackageDir pushed, the way a WFM would (package by
 * tag, components by tag with the description's revision), verifying every digest, validating
 * every layout, and checking the pulled digests and contents equal what was pushed. Problem
 * pointers are prefixed with the repository they concern.
 */
export async function verifyPublished(
  client: OciClient,
  published: PublishedPackage,
): Promise<Problem[]> {
  const problems: Problem[] = [];
  const prefixed = (where: string, ps: readonly Problem[]) =>
    problems.push(...ps.map((p) => ({ ...p, pointer: `${where}#${p.pointer}` })));
  const { pkg } = published;
  const pulled = await pullApplicationPackage(client, pkg.repository, pkg.tag);
  const pkgWhere = `${pkg.repository}:${pkg.tag}`;
  prefixed(pkgWhere, pulled.problems);
  if (pulled.manifestDigest !== undefined && pulled.manifestDigest !== pkg.digest) {
    problems.push(
      problem(
        "oci.digest-mismatch",
        pkgWhere,
        `pulled ${pulled.manifestDigest}, pushed ${pkg.digest}`,
      ),
    );
  }
  for (const c of published.components) {
    const where = `${c.pushedRepository}:${c.pushed.tag}`;
    const result =
      c.type === "compose"
        ? await pullComposeComponent(client, c.pushedRepository, c.pushed.tag, {
            revision: c.revision,
          })
        : await pullHelmChart(client, c.pushedRepository, c.pushed.tag);
    prefixed(where, result.problems);
    const content = "archive" in result ? result.archive : result.chartTgz;
    const chartVersion = "chartMeta" in result ? result.chartMeta?.version : undefined;
    if (
      typeof chartVersion === "string" &&
      versionToTag(chartVersion) !== versionToTag(c.revision)
    ) {
      problems.push(
        problem(
          "oci.tag-version-mismatch",
          where,
          `chart version ${JSON.stringify(chartVersion)} differs from the description's revision ${JSON.stringify(c.revision)}`,
        ),
      );
    }
    if (result.manifestDigest !== undefined && result.manifestDigest !== c.pushed.digest) {
      problems.push(
        problem(
          "oci.digest-mismatch",
          where,
          `pulled ${result.manifestDigest}, pushed ${c.pushed.digest}`,
        ),
      );
    }
    if (content !== undefined && !Buffer.from(content).equals(Buffer.from(c.content))) {
      problems.push(
        problem("oci.digest-mismatch", where, "pulled content differs from what was pushed"),
      );
    }
  }
  return problems;
}
