/**
 * Turns a configured package source into a judged PackageSource: a folder is validated in place,
 * an archive is unpacked into the suite's work dir first, an OCI reference is pulled (package,
 * then every component by its revision) with digests verified. All judging is done by the
 * @margo/proto tooling; this module only fetches, unpacks and labels where problems came from.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Problem, problem } from "@margo/proto";
import {
  OciClient,
  OciError,
  parseOciRepositoryUri,
  pullApplicationPackage,
  pullComposeComponent,
  pullHelmChart,
  unsafePathReason,
  versionToTag,
} from "@margo/proto/oci";
import {
  readTarGz,
  splitArchivePath,
  validateComposeArchive,
  validateHelmChart,
  validatePackageDir,
} from "@margo/proto/package";
import { parse as parseYaml } from "yaml";
import type {
  PackageSource,
  PackageSourceKind,
  ProblemOrigin,
  SourceComponent,
  SourcedProblem,
} from "./context.js";

/** A source string that is neither an existing folder/archive nor an OCI reference. */
export class PackageSourceError extends Error {
  override readonly name = "PackageSourceError";
}

/** `host[:port]/repo[/more]:tag` or `...@sha256:...`, optionally written with oci://. */
const OCI_REF =
  /^([a-z0-9.-]+(?::\d+)?)\/([a-z0-9]+(?:[._/-][a-z0-9]+)*)(?::([\w][\w.-]{0,127})|@([a-z0-9]+:[a-f0-9]+))$/;

export interface OciRef {
  registry: string;
  repository: string;
  /** Tag or digest. */
  reference: string;
}

/** Parses an OCI reference; undefined when the text is not one. */
export function parseOciRef(text: string): OciRef | undefined {
  const m = OCI_REF.exec(text.replace(/^oci:\/\//, ""));
  if (!m?.[1] || !m[2]) return undefined;
  const reference = m[3] ?? m[4];
  if (!reference) return undefined;
  return { registry: m[1], repository: m[2], reference };
}

/** Decides what a configured source is, without touching the network. */
export function classifySource(spec: string): PackageSourceKind {
  if (!spec.startsWith("oci://") && existsSync(spec)) {
    const st = statSync(spec);
    if (st.isDirectory()) return "folder";
    if (st.isFile() && /\.(tar\.gz|tgz)$/i.test(spec)) return "archive";
    throw new PackageSourceError(
      `package source ${spec} is a file but not a .tar.gz/.tgz archive of a package folder`,
    );
  }
  if (parseOciRef(spec)) return "oci";
  throw new PackageSourceError(
    `package source ${spec} is neither an existing folder or .tar.gz/.tgz archive nor an OCI reference host/repo:tag`,
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The compose and helm components a (valid) description names, first occurrence wins. */
function componentsOf(descriptionText: string): SourceComponent[] {
  let doc: unknown;
  try {
    doc = parseYaml(descriptionText);
  } catch {
    return [];
  }
  const out: SourceComponent[] = [];
  const seen = new Set<string>();
  const profiles =
    isRecord(doc) && Array.isArray(doc.deploymentProfiles) ? doc.deploymentProfiles : [];
  for (const p of profiles) {
    if (!isRecord(p) || (p.type !== "compose" && p.type !== "helm")) continue;
    for (const c of Array.isArray(p.components) ? p.components : []) {
      if (!isRecord(c) || typeof c.name !== "string" || !isRecord(c.properties)) continue;
      const key = `${p.type}/${c.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        name: c.name,
        type: p.type,
        repository: String(c.properties.repository ?? ""),
        revision: String(c.properties.revision ?? ""),
      });
    }
  }
  return out;
}

function appOf(descriptionText: string | undefined): { appId?: string; version?: string } {
  if (descriptionText === undefined) return {};
  try {
    const doc: unknown = parseYaml(descriptionText);
    if (!isRecord(doc)) return {};
    const out: { appId?: string; version?: string } = {};
    if (typeof doc.id === "string") out.appId = doc.id;
    if (isRecord(doc.metadata) && typeof doc.metadata.version === "string")
      out.version = doc.metadata.version;
    return out;
  } catch {
    return {};
  }
}

function tagged(
  origin: ProblemOrigin,
  problems: readonly Problem[],
  prefix = "",
): SourcedProblem[] {
  return problems.map((p) => ({ ...p, pointer: `${prefix}${p.pointer}`, origin }));
}

/** Judges a package folder in place with validatePackageDir (all description/layout/archive/chart rules). */
async function judgeFolder(
  spec: string,
  kind: PackageSourceKind,
  dir: string,
): Promise<PackageSource> {
  const r = await validatePackageDir(dir);
  const descriptionValid = r.doc !== undefined;
  const components = descriptionValid && r.descriptionText ? componentsOf(r.descriptionText) : [];
  // validatePackageDir judges component content only for source-form packages (components/).
  const inspected = new Set(
    existsSync(join(dir, "components")) ? components.map((c) => c.name) : [],
  );
  return {
    spec,
    kind,
    dir,
    descriptionRead: r.descriptionText !== undefined,
    descriptionValid,
    components,
    problems: tagged({ kind: "package-dir" }, r.problems),
    inspected,
    ...appOf(r.descriptionText),
  };
}

/**
 * Unpacks a package-folder archive (files and folders only; links and special entries are not
 * needed to judge a package and are never written). A single top folder without margo.yaml
 * beside it is taken as the package root.
 */
async function unpackPackageArchive(
  path: string,
  workDir: string,
): Promise<{ dir: string; notes: string[] }> {
  const { readFile } = await import("node:fs/promises");
  const bytes = new Uint8Array(await readFile(path));
  const { entries, problems } = await readTarGz(bytes);
  const fatal = problems.filter((p) => p.severity === "error");
  if (entries.length === 0 && fatal.length > 0)
    throw new PackageSourceError(
      `${path}: not a readable gzip tar (${fatal.map((p) => p.message).join("; ")})`,
    );
  const root = await mkdtemp(join(workDir, "archive-"));
  const notes: string[] = [];
  for (const e of entries) {
    const split = splitArchivePath(e.path);
    if (split.absolute || split.traversal || split.nul || split.segments.length === 0) {
      notes.push(`${path}: entry ${e.path} not unpacked (leaves the package folder)`);
      continue;
    }
    const target = join(root, ...split.segments);
    if (e.type === "dir") await mkdir(target, { recursive: true });
    else if (e.type === "file") {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, e.content ?? new Uint8Array());
    } else notes.push(`${path}: ${e.type} entry ${e.path} not unpacked`);
  }
  if (existsSync(join(root, "margo.yaml"))) return { dir: root, notes };
  const { readdir } = await import("node:fs/promises");
  const top = await readdir(root);
  if (top.length === 1 && top[0] && statSync(join(root, top[0])).isDirectory())
    return { dir: join(root, top[0]), notes };
  return { dir: root, notes };
}

/**
 * Pulls a package from a registry the way a WFM would: the package by its reference, then every
 * component from its description repository by its revision tag. Pulled files become a local
 * folder for the description and layout rules; component content goes to the archive and chart
 * validators directly.
 */
async function judgeOci(spec: string, ref: OciRef, workDir: string): Promise<PackageSource> {
  const clients = new Map<string, OciClient>();
  const clientFor = (registry: string) => {
    let c = clients.get(registry);
    if (!c) {
      c = new OciClient({ registry });
      clients.set(registry, c);
    }
    return c;
  };
  const pulled = await pullApplicationPackage(
    clientFor(ref.registry),
    ref.repository,
    ref.reference,
  );
  const where = `${ref.registry}/${ref.repository}@${ref.reference}`;
  const problems: SourcedProblem[] = tagged({ kind: "oci-package" }, pulled.problems, `${where}#`);
  const dir = await mkdtemp(join(workDir, "oci-"));
  for (const f of pulled.files) {
    if (unsafePathReason(f.path) !== undefined) continue; // oci.title-annotation already says why
    const target = resolve(dir, f.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, f.bytes);
  }
  const judged = await judgeFolder(spec, "oci", dir);
  problems.push(...judged.problems);
  const inspected = new Set<string>();
  if (judged.descriptionValid) {
    for (const c of judged.components) {
      const origin: ProblemOrigin = {
        kind: "oci-component",
        component: c.name,
        componentType: c.type,
      };
      let loc: { registry: string; repository: string };
      try {
        loc = parseOciRepositoryUri(c.repository);
      } catch (err) {
        // description.repository-scheme judges the URI; nothing can be pulled.
        problems.push(
          ...tagged(origin, [
            problem(
              "oci.tag-version-mismatch",
              c.repository,
              `cannot pull component ${c.name}: ${(err as Error).message}`,
            ),
          ]),
        );
        continue;
      }
      const tag = versionToTag(c.revision);
      const at = `${loc.registry}/${loc.repository}:${tag}`;
      try {
        if (c.type === "compose") {
          const r = await pullComposeComponent(clientFor(loc.registry), loc.repository, tag, {
            revision: c.revision,
          });
          problems.push(...tagged(origin, r.problems, `${at}#`));
          if (r.archive) {
            const a = await validateComposeArchive(r.archive, { componentName: c.name });
            problems.push(...tagged({ kind: "package-dir" }, a.problems, `${at}:`));
            inspected.add(c.name);
          }
        } else {
          const r = await pullHelmChart(clientFor(loc.registry), loc.repository, tag);
          problems.push(...tagged(origin, r.problems, `${at}#`));
          const chartVersion = r.chartMeta?.version;
          if (typeof chartVersion === "string" && versionToTag(chartVersion) !== tag)
            problems.push(
              ...tagged(origin, [
                problem(
                  "oci.tag-version-mismatch",
                  at,
                  `chart version ${JSON.stringify(chartVersion)} differs from the description's revision ${JSON.stringify(c.revision)}`,
                ),
              ]),
            );
          if (r.chartTgz) {
            const h = await validateHelmChart(r.chartTgz, {
              componentName: c.name,
              revision: c.revision,
            });
            problems.push(...tagged({ kind: "package-dir" }, h.problems, `${at}:`));
            inspected.add(c.name);
          }
        }
      } catch (err) {
        // A registry that cannot be reached says nothing about the package: error, not fail.
        if (!(err instanceof OciError) || err.code === "NETWORK" || err.status >= 500) throw err;
        // The description promises this component at tag = revision; the registry does not have it.
        problems.push(
          ...tagged(origin, [
            problem(
              "oci.tag-version-mismatch",
              at,
              `component ${c.name} cannot be pulled by its revision tag: ${err.message}`,
            ),
          ]),
        );
      }
    }
  }
  return { ...judged, problems, inspected };
}

/**
 * Resolves and judges one configured source. Failures to reach the source at all (registry
 * down, package manifest unknown, unreadable archive) are recorded as resolveError, which the
 * checks turn into an error outcome, never a fail: the package was not seen.
 */
export async function resolveSource(spec: string, workDir: string): Promise<PackageSource> {
  const kind = classifySource(spec);
  try {
    if (kind === "folder") return await judgeFolder(spec, kind, resolve(spec));
    if (kind === "archive") {
      const { dir, notes } = await unpackPackageArchive(resolve(spec), workDir);
      const judged = await judgeFolder(spec, kind, dir);
      return { ...judged, notes };
    }
    const ref = parseOciRef(spec) as OciRef;
    return await judgeOci(spec, ref, workDir);
  } catch (err) {
    if (err instanceof PackageSourceError || err instanceof OciError || isFsError(err))
      return {
        spec,
        kind,
        descriptionRead: false,
        descriptionValid: false,
        components: [],
        problems: [],
        inspected: new Set(),
        resolveError: (err as Error).message,
      };
    throw err;
  }
}

function isFsError(err: unknown): boolean {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === "string" &&
    !(err instanceof OciError)
  );
}
