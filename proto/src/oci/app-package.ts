import { readFile, realpath } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  type BlobSpec,
  dropKeys,
  layerAt,
  type PulledHead,
  type PushedArtifact,
  pullDescriptor,
  pullHead,
  pushArtifact,
  tagOf,
} from "./artifact.js";
import type { OciClient } from "./client.js";
import { isRecord, layersOf, stringMap } from "./manifest.js";
import {
  ANNOTATION_MARGO_RESOURCE,
  ANNOTATION_TITLE,
  MARGO_APP_ARTIFACT_TYPE,
  MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  MARGO_RESOURCE_KINDS,
  type MargoResourceKind,
  OCI_EMPTY_BYTES,
  OCI_EMPTY_DESCRIPTOR,
  resourceMediaType,
} from "./media-types.js";
import { versionToTag } from "./reference.js";
import { unsafePathReason, validatePackageManifest } from "./validate.js";

/** The description's file name inside a package and its layer title. */
export const DESCRIPTION_FILE = "margo.yaml";

/** One file of an Application Package: the description or a catalog resource. */
export interface PackageFile {
  /** Package-relative path, e.g. "margo.yaml" or "resources/icon.png". */
  path: string;
  bytes: Uint8Array;
  /** "description" for margo.yaml, otherwise the catalog key that references the file. */
  kind?: "description" | MargoResourceKind;
}

/** Overrides for publishing deliberately broken packages (OCI-stage fixtures); normally unused. */
export interface PushPackageOptions {
  tag?: string;
  artifactType?: string;
  /** Per-path media type overrides. */
  mediaTypes?: Record<string, string>;
  /** Annotation keys to leave off every layer. */
  dropAnnotations?: readonly string[];
  /** Manifest-level annotations. */
  annotations?: Record<string, string>;
}

/** A package file as pulled, with what its layer said about it. */
export interface PulledPackageFile {
  path: string;
  mediaType: string;
  digest: string;
  /** The org.margo.app.resource value, when the layer had one. */
  resource?: string;
  bytes: Uint8Array;
}

export interface PulledApplicationPackage extends PulledHead {
  /** margo.yaml text; undefined when the package has no readable description layer. */
  description: string | undefined;
  /** metadata.version read from the description, when present. */
  version: string | undefined;
  files: PulledPackageFile[];
}

/** normalizePath turns a catalog path like "./resources/a.md" into the layer title form. */
function normalizePath(path: string): string {
  return path.replace(/^(\.\/)+/, "");
}

/** catalogOf reads metadata.version and the resource paths of metadata.catalog.application. */
export function catalogOf(descriptionText: string): {
  version: string | undefined;
  resources: Array<{ kind: MargoResourceKind; path: string }>;
} {
  let doc: unknown;
  try {
    doc = parseYaml(descriptionText);
  } catch {
    return { version: undefined, resources: [] };
  }
  const metadata = isRecord(doc) && isRecord(doc.metadata) ? doc.metadata : {};
  const version = typeof metadata.version === "string" ? metadata.version : undefined;
  const app =
    isRecord(metadata.catalog) && isRecord(metadata.catalog.application)
      ? metadata.catalog.application
      : {};
  const resources: Array<{ kind: MargoResourceKind; path: string }> = [];
  for (const kind of MARGO_RESOURCE_KINDS) {
    const path = app[kind];
    if (typeof path === "string" && path !== "")
      resources.push({ kind, path: normalizePath(path) });
  }
  return { version, resources };
}

/**
 * UnsafePackagePathError: a package path (a catalog reference or a file handed to the publisher)
 * would reach outside the package, through `..`, an absolute path or a symlink. The publisher
 * refuses it rather than read and push a file the package author may not own.
 */
export class UnsafePackagePathError extends Error {
  /** The path as the package named it (after dropping a leading `./`). */
  readonly path: string;
  constructor(path: string, why: string) {
    super(`unsafe package path ${JSON.stringify(path)}: ${why}`);
    this.name = "UnsafePackagePathError";
    this.path = path;
  }
}

/** checkPackagePath throws UnsafePackagePathError unless the path is a plain relative one. */
function checkPackagePath(path: string): void {
  const why = unsafePathReason(path);
  if (why !== undefined) throw new UnsafePackagePathError(path, why);
}

/**
 * readInside reads a package-relative file after resolving symlinks, refusing anything that
 * resolves outside the (resolved) package directory; it reads the resolved path, so what was
 * checked is what is read.
 */
async function readInside(realDir: string, path: string): Promise<Uint8Array> {
  checkPackagePath(path);
  const real = await realpath(join(realDir, path));
  const rel = relative(realDir, real);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UnsafePackagePathError(path, `it resolves to ${real}, outside the package`);
  }
  return new Uint8Array(await readFile(real));
}

/**
 * readPackageDir collects the files that make up a package from a directory: margo.yaml and each
 * resource its catalog references. Component sources (fixtures keep them in `components/`) are not
 * package files: components live in their own repositories. A catalog path that leaves the
 * directory (absolute, `..`, a symlink pointing out) throws UnsafePackagePathError; nothing
 * outside the directory is ever read.
 */
export async function readPackageDir(dir: string): Promise<PackageFile[]> {
  const realDir = await realpath(dir);
  const description = await readInside(realDir, DESCRIPTION_FILE);
  const files: PackageFile[] = [
    { path: DESCRIPTION_FILE, bytes: description, kind: "description" },
  ];
  const { resources } = catalogOf(new TextDecoder().decode(description));
  const seen = new Set<string>();
  for (const { kind, path } of resources) {
    if (seen.has(path)) continue;
    seen.add(path);
    files.push({ path, bytes: await readInside(realDir, path), kind });
  }
  return files;
}

/** MissingVersionError: a package cannot be tagged because margo.yaml has no metadata.version. */
export class MissingVersionError extends Error {
  constructor() {
    super("margo.yaml has no metadata.version, so the package has no tag");
    this.name = "MissingVersionError";
  }
}

/**
 * pushApplicationPackage publishes a package in the Margo layout (checklist 78-79): an image
 * manifest with the Margo artifactType, the empty config, margo.yaml first and one layer per
 * resource, tagged with metadata.version. A resource path that could leave the package throws
 * UnsafePackagePathError before anything is sent, since it would become the layer title pullers
 * write to.
 */
export async function pushApplicationPackage(
  client: OciClient,
  repo: string,
  source: string | readonly PackageFile[],
  opts: PushPackageOptions = {},
): Promise<PushedArtifact> {
  const files = typeof source === "string" ? await readPackageDir(source) : source;
  const descriptionFile = files.find(
    (f) => f.kind === "description" || f.path === DESCRIPTION_FILE,
  );
  if (!descriptionFile) throw new Error(`a package needs ${DESCRIPTION_FILE}`);
  const catalog = catalogOf(new TextDecoder().decode(descriptionFile.bytes));
  const kindByPath = new Map(catalog.resources.map((r) => [r.path, r.kind]));
  const layers: BlobSpec[] = [];
  const ordered = [descriptionFile, ...files.filter((f) => f !== descriptionFile)];
  for (const file of ordered) {
    const path = normalizePath(file.path);
    const isDescription = file === descriptionFile;
    if (!isDescription) checkPackagePath(path);
    const kind = isDescription
      ? undefined
      : file.kind !== "description"
        ? (file.kind ?? kindByPath.get(path))
        : undefined;
    if (!isDescription && !kind) {
      throw new Error(
        `${path} is not referenced by metadata.catalog.application, so it has no resource kind`,
      );
    }
    const annotations: Record<string, string> = {
      [ANNOTATION_TITLE]: isDescription ? DESCRIPTION_FILE : path,
    };
    if (kind) annotations[ANNOTATION_MARGO_RESOURCE] = kind;
    layers.push({
      bytes: file.bytes,
      mediaType:
        opts.mediaTypes?.[path] ??
        (kind ? resourceMediaType(kind, path) : MARGO_APP_DESCRIPTION_MEDIA_TYPE),
      annotations: dropKeys(annotations, opts.dropAnnotations),
    });
  }
  const tag =
    opts.tag ?? (catalog.version !== undefined ? versionToTag(catalog.version) : undefined);
  if (tag === undefined) throw new MissingVersionError();
  return pushArtifact(client, repo, tag, {
    artifactType: opts.artifactType ?? MARGO_APP_ARTIFACT_TYPE,
    config: {
      bytes: OCI_EMPTY_BYTES,
      mediaType: OCI_EMPTY_DESCRIPTOR.mediaType,
      data: OCI_EMPTY_DESCRIPTOR.data,
    },
    layers,
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
}

/**
 * pullApplicationPackage pulls a package by tag or digest, verifies every digest and validates the
 * layout, returning all problems (a digest failure is a problem, not an exception; registry errors
 * such as MANIFEST_UNKNOWN still throw OciError).
 */
export async function pullApplicationPackage(
  client: OciClient,
  repo: string,
  reference: string,
): Promise<PulledApplicationPackage> {
  const { pulled, head } = await pullHead(client, repo, reference);
  const { problems } = head;
  const result: PulledApplicationPackage = {
    ...head,
    description: undefined,
    version: undefined,
    files: [],
  };
  if (!pulled) return result;
  for (const [index, layer] of layersOf(pulled.manifest).entries()) {
    const bytes = await pullDescriptor(client, repo, layer, layerAt(index), problems);
    if (!bytes || !isRecord(layer)) continue;
    const annotations = stringMap(layer.annotations);
    const mediaType = typeof layer.mediaType === "string" ? layer.mediaType : "";
    const file: PulledPackageFile = {
      path: annotations[ANNOTATION_TITLE] ?? `layer-${index}`,
      mediaType,
      digest: String(layer.digest),
      bytes,
    };
    const resource = annotations[ANNOTATION_MARGO_RESOURCE];
    if (resource !== undefined) file.resource = resource;
    result.files.push(file);
    if (mediaType === MARGO_APP_DESCRIPTION_MEDIA_TYPE && result.description === undefined) {
      result.description = new TextDecoder().decode(bytes);
    }
  }
  if (result.description !== undefined) result.version = catalogOf(result.description).version;
  problems.unshift(
    ...validatePackageManifest(pulled.manifest, {
      tag: tagOf(reference),
      version: result.version,
    }),
  );
  return result;
}
