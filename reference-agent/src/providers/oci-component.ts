import type { Problem } from "@margo/proto";
import type { FetchLike, OciClient } from "@margo/proto/oci";
import type { ProviderFailure } from "./provider.js";

/**
 * Pulling a component (Compose archive or Helm chart) for a provider: split the `oci://`
 * repository, pull through the foundation's OCI client (which verifies every digest over the exact
 * bytes before anything is returned, item 74) and turn what went wrong into the provider error
 * codes the reconciler reports. `@margo/proto/oci` is imported on first pull only: an idle agent
 * with nothing to install should not carry it.
 */

/** Where a component is pulled from. */
export interface ComponentLocation {
  registry: string;
  repository: string;
  /** The tag (revision with `+` written `_`) or a digest when the revision is one. */
  reference: string;
  plainHttp: boolean;
}

/** A pull either yields verified bytes or the failure to report. */
export type PullResult =
  | { ok: true; bytes: Uint8Array; manifestDigest: string }
  | { ok: false; error: ProviderFailure };

const DIGEST_RULES = new Set(["oci.digest-mismatch", "oci.digest-invalid"]);

/**
 * componentLocation splits `oci://host[:port]/path` + revision. Plain HTTP only for registries
 * the operator listed (a loopback test registry); everything else is HTTPS.
 */
export async function componentLocation(
  repositoryUri: string,
  revision: string,
  plainHttpRegistries: readonly string[],
): Promise<ComponentLocation> {
  const oci = await import("@margo/proto/oci");
  const { registry, repository } = oci.parseOciRepositoryUri(repositoryUri);
  const reference = oci.isDigest(revision) ? revision : oci.versionToTag(revision);
  return { registry, repository, reference, plainHttp: plainHttpRegistries.includes(registry) };
}

/** failureFromProblems picks the code: any digest problem wins over layout problems. */
export function failureFromProblems(what: string, problems: readonly Problem[]): ProviderFailure {
  const errors = problems.filter((p) => p.severity === "error");
  const digest = errors.filter((p) => DIGEST_RULES.has(p.rule));
  const shown = (digest.length > 0 ? digest : errors)
    .slice(0, 3)
    .map((p) => `${p.rule}${p.pointer ? ` at ${p.pointer}` : ""}: ${p.message}`)
    .join("; ");
  return digest.length > 0
    ? { code: "DIGEST_MISMATCH", message: `${what}: ${shown}` }
    : { code: "ARTIFACT_REJECTED", message: `${what}: ${shown}` };
}

function abortableFetch(signal: AbortSignal): FetchLike {
  return (input, init) => fetch(input, { ...init, signal });
}

async function clientFor(loc: ComponentLocation, signal: AbortSignal): Promise<OciClient> {
  const { OciClient } = await import("@margo/proto/oci");
  return new OciClient({
    registry: loc.registry,
    plainHttp: loc.plainHttp,
    fetch: abortableFetch(signal),
  });
}

/**
 * pullFailure maps a thrown error: aborts propagate (the provider contract throws only then),
 * a malformed reference is the artifact's fault, everything else (network, 404, 5xx) is a pull
 * failure worth retrying later.
 */
function pullFailure(what: string, e: unknown, signal: AbortSignal): ProviderFailure {
  if (signal.aborted) throw signal.reason ?? e;
  const err = e as Error;
  if (err?.name === "InvalidReferenceError") {
    return { code: "ARTIFACT_REJECTED", message: `${what}: ${err.message}` };
  }
  if (err?.name === "DigestMismatchError" || err?.name === "InvalidDigestError") {
    return { code: "DIGEST_MISMATCH", message: `${what}: ${err.message}` };
  }
  const cause = (err as { cause?: { message?: string } })?.cause?.message;
  return {
    code: "PULL_FAILED",
    message: `${what}: ${err?.message ?? String(e)}${cause ? ` (${cause})` : ""}`,
  };
}

/** pullComposeArchiveBytes: the Compose Archive of a component, digest-verified and layout-checked. */
export async function pullComposeArchiveBytes(
  repositoryUri: string,
  revision: string,
  plainHttpRegistries: readonly string[],
  signal: AbortSignal,
): Promise<PullResult> {
  const what = `pull ${repositoryUri}:${revision}`;
  try {
    const loc = await componentLocation(repositoryUri, revision, plainHttpRegistries);
    const { pullComposeComponent, isDigest } = await import("@margo/proto/oci");
    const pulled = await pullComposeComponent(
      await clientFor(loc, signal),
      loc.repository,
      loc.reference,
      isDigest(revision) ? {} : { revision },
    );
    if (pulled.problems.some((p) => p.severity === "error") || !pulled.archive) {
      return { ok: false, error: failureFromProblems(what, pulled.problems) };
    }
    return { ok: true, bytes: pulled.archive, manifestDigest: pulled.manifestDigest ?? "" };
  } catch (e) {
    return { ok: false, error: pullFailure(what, e, signal) };
  }
}

/** pullHelmChartBytes: the chart .tgz, digest-verified and checked against the Helm layout. */
export async function pullHelmChartBytes(
  repositoryUri: string,
  revision: string,
  plainHttpRegistries: readonly string[],
  signal: AbortSignal,
): Promise<PullResult> {
  const what = `pull ${repositoryUri}:${revision}`;
  try {
    const loc = await componentLocation(repositoryUri, revision, plainHttpRegistries);
    const { pullHelmChart } = await import("@margo/proto/oci");
    const pulled = await pullHelmChart(await clientFor(loc, signal), loc.repository, loc.reference);
    if (pulled.problems.some((p) => p.severity === "error") || !pulled.chartTgz) {
      return { ok: false, error: failureFromProblems(what, pulled.problems) };
    }
    return { ok: true, bytes: pulled.chartTgz, manifestDigest: pulled.manifestDigest ?? "" };
  } catch (e) {
    return { ok: false, error: pullFailure(what, e, signal) };
  }
}
