/**
 * Repository names, tags and `oci://` locations. Margo descriptions name components by an
 * `oci://host/path` repository plus a `revision` tag; the client wants them split, validated
 * up front so a bad name fails locally with a clear message instead of as a registry 404.
 */

/** Repository name grammar of the OCI distribution spec. */
export const REPOSITORY_RE =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** Tag grammar of the OCI distribution spec (no `+`: SemVer build metadata is written `_`). */
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** OciLocation is a registry host and a repository inside it. */
export interface OciLocation {
  registry: string;
  repository: string;
}

/** InvalidReferenceError: a repository, tag or oci:// URI does not follow the grammar. */
export class InvalidReferenceError extends Error {
  readonly value: string;
  constructor(value: string, why: string) {
    super(`invalid OCI reference ${JSON.stringify(value)}: ${why}`);
    this.name = "InvalidReferenceError";
    this.value = value;
  }
}

/** parseOciRepositoryUri splits `oci://host[:port]/path` (a component's `repository`). */
export function parseOciRepositoryUri(uri: string): OciLocation {
  const m = /^oci:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m?.[1] || !m[2])
    throw new InvalidReferenceError(uri, "expected oci://<registry>/<repository>");
  const repository = m[2].replace(/\/+$/, "");
  if (!REPOSITORY_RE.test(repository)) {
    throw new InvalidReferenceError(
      uri,
      `repository ${JSON.stringify(repository)} is not a valid name`,
    );
  }
  return { registry: m[1], repository };
}

/**
 * versionToTag turns a SemVer version into an OCI tag: Margo writes build metadata `+` as `_`
 * because `+` is not allowed in tags.
 */
export function versionToTag(version: string): string {
  return version.replaceAll("+", "_");
}

/** tagMatchesVersion compares a tag with a version under the `+`/`_` convention. */
export function tagMatchesVersion(tag: string, version: string): boolean {
  return tag === versionToTag(version);
}
