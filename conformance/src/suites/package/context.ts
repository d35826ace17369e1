/**
 * What the package suite's checks are given: every configured source, resolved once when the
 * suite opens and judged by the package and OCI tooling of @margo/proto. Checks only route the
 * problems those tools found to the family that owns them; the rules themselves live in proto.
 */
import type { Problem } from "@margo/proto";

/** How a package reached the harness. */
export type PackageSourceKind = "folder" | "archive" | "oci";

/**
 * Which tool (and which artifact) a problem came from. OCI problems are routed by origin, not by
 * rule id, because one rule (e.g. `oci.tag-version-mismatch`) applies to the package and to its
 * components, which different requirements govern.
 */
export type ProblemOrigin =
  /** validatePackageDir over the package folder (description, layout, archive, chart rules). */
  | { kind: "package-dir" }
  /** The package manifest and its layers as pulled from the registry. */
  | { kind: "oci-package" }
  /** One component's manifest and content as pulled from the registry. */
  | { kind: "oci-component"; component: string; componentType: "compose" | "helm" };

export interface SourcedProblem extends Problem {
  origin: ProblemOrigin;
}

/** A component the description names, as the suite found it. */
export interface SourceComponent {
  name: string;
  type: "compose" | "helm";
  repository: string;
  revision: string;
}

export interface PackageSource {
  /** The source as configured (folder path, archive path or OCI reference). */
  readonly spec: string;
  readonly kind: PackageSourceKind;
  /** The package as a local folder: the folder itself, the unpacked archive, or the pulled files. */
  readonly dir?: string;
  /** True when a margo.yaml was read, so the description rules could judge it. */
  readonly descriptionRead: boolean;
  /** True when the description had no errors, so its components are known. */
  readonly descriptionValid: boolean;
  readonly components: readonly SourceComponent[];
  /** Every problem (errors and warnings) every tool found in this source. */
  readonly problems: readonly SourcedProblem[];
  /** Components whose content was actually inspected (compose archives / helm charts). */
  readonly inspected: ReadonlySet<string>;
  /** Set when the source could not be resolved at all (unreadable path, registry unreachable). */
  readonly resolveError?: string;
  /** What the suite noticed while resolving (entries not unpacked and why). */
  readonly notes?: readonly string[];
  /** Application id and version from the description, for reports. */
  readonly appId?: string;
  readonly version?: string;
}

export interface PackageCtx {
  readonly sources: readonly PackageSource[];
}
