/**
 * The package suite's checks. Each owns a group of rule ids (or, for OCI layout problems, the
 * artifact a problem came from) and fails with exactly those problems, so a package broken in
 * one way fails one family. Every check runs over every source and names the source it failed on.
 */
import type { Check, CheckTools, Level } from "../../core/types.js";
import type { PackageCtx, PackageSource, SourcedProblem } from "./context.js";

/** What a check judges in one source, or why it does not apply there. */
type Scope = { applies: true } | { applies: false; reason: string };

interface RuleCheckSpec {
  id: string;
  title: string;
  requirements: string[];
  level: Level;
  /** Does the check apply to this source? */
  scope(source: PackageSource): Scope;
  /** Is this problem one this check owns? */
  owns(p: SourcedProblem): boolean;
}

/** A problem as shown in a failure's details: enough for a vendor to find and fix it. */
export interface ReportedProblem {
  source: string;
  rule: string;
  pointer: string;
  message: string;
}

function ruleCheck(spec: RuleCheckSpec): Check<PackageCtx> {
  return {
    id: spec.id,
    title: spec.title,
    suite: "package",
    family: spec.id.split(".").slice(0, 2).join("."),
    requirements: spec.requirements,
    level: spec.level,
    async run(ctx: PackageCtx, t: CheckTools) {
      const failed: ReportedProblem[] = [];
      const broken: string[] = [];
      let judged = 0;
      for (const source of ctx.sources) {
        if (source.resolveError !== undefined) {
          broken.push(`${source.spec}: ${source.resolveError}`);
          continue;
        }
        const scope = spec.scope(source);
        if (!scope.applies) {
          t.note(`${source.spec}: not applicable (${scope.reason})`);
          continue;
        }
        judged++;
        const mine = source.problems.filter((p) => spec.owns(p));
        for (const w of mine.filter((p) => p.severity === "warning"))
          t.note(`${source.spec}: warning ${w.rule} at ${w.pointer || "/"}: ${w.message}`);
        const errors = mine.filter((p) => p.severity === "error");
        if (errors.length === 0) t.note(`${source.spec}: no ${spec.id} problems`);
        for (const p of errors)
          failed.push({
            source: source.spec,
            rule: p.rule,
            pointer: p.pointer,
            message: p.message,
          });
      }
      if (failed.length > 0) {
        const sources = [...new Set(failed.map((f) => f.source))];
        const first = failed[0] as ReportedProblem;
        t.fail(
          `${failed.length} problem(s) in ${sources.join(", ")} (${spec.requirements.join(", ")}); first: ${first.rule} at ${first.pointer || "/"}: ${first.message}`,
          failed,
        );
      }
      // A source the harness could not read is an environment problem, not a finding.
      if (broken.length > 0)
        throw new Error(`package source could not be resolved: ${broken.join("; ")}`);
      if (judged === 0) {
        // Group sources by reason so a long source list still gives a readable line.
        const byReason = new Map<string, string[]>();
        for (const s of ctx.sources) {
          const sc = spec.scope(s);
          const reason = sc.applies ? "applies" : sc.reason;
          byReason.set(reason, [...(byReason.get(reason) ?? []), s.spec]);
        }
        const reasons = [...byReason].map(([r, ss]) => `${r}: ${ss.join(", ")}`);
        t.skip(`applies to no configured source (${reasons.join("; ")})`);
      }
    },
  };
}

const byPrefix =
  (...prefixes: string[]) =>
  (p: SourcedProblem) =>
    p.origin.kind === "package-dir" && prefixes.some((x) => p.rule.startsWith(x));

const always: RuleCheckSpec["scope"] = () => ({ applies: true });

function needsDescription(s: PackageSource): Scope {
  if (!s.descriptionRead)
    return { applies: false, reason: "no margo.yaml was read (see package.layout)" };
  return { applies: true };
}

function componentsOfType(type: "compose" | "helm", what: string) {
  return (s: PackageSource): Scope => {
    if (!s.descriptionValid)
      return {
        applies: false,
        reason:
          "the description has errors, so its components are unknown (see package.description)",
      };
    const found = s.components.filter((c) => c.type === type);
    if (found.length === 0) return { applies: false, reason: `no ${type} component` };
    if (!found.some((c) => s.inspected.has(c.name)))
      return {
        applies: false,
        reason: `the ${what} are not in this source (a folder without components/, or not pullable)`,
      };
    return { applies: true };
  };
}

function ociOnly(extra?: (s: PackageSource) => Scope) {
  return (s: PackageSource): Scope => {
    if (s.kind !== "oci")
      return {
        applies: false,
        reason: `${s.kind} source; only OCI references are checked as published`,
      };
    return extra ? extra(s) : { applies: true };
  };
}

function hasComponent(type: "compose" | "helm") {
  return (s: PackageSource): Scope => {
    if (!s.descriptionValid)
      return {
        applies: false,
        reason:
          "the description has errors, so its components are unknown (see package.description)",
      };
    return s.components.some((c) => c.type === type)
      ? { applies: true }
      : { applies: false, reason: `no ${type} component` };
  };
}

const fromComponent = (type: "compose" | "helm") => (p: SourcedProblem) =>
  p.origin.kind === "oci-component" && p.origin.componentType === type;

export const packageChecks: readonly Check<PackageCtx>[] = [
  ruleCheck({
    id: "package.description.rules",
    title: "The Application Description satisfies every rc.3 description rule",
    requirements: ["package-077"],
    level: "MUST",
    scope: needsDescription,
    owns: byPrefix("description."),
  }),
  ruleCheck({
    id: "package.layout.rules",
    title: "The package root holds exactly one margo.yaml and every resource it names",
    requirements: ["package-100"],
    level: "MUST",
    scope: always,
    owns: byPrefix("package."),
  }),
  ruleCheck({
    id: "package.archive.rules",
    title:
      "Every Compose component's archive is safe and complete (one top dir, compose.yaml, no escapes, referenced files, no secrets)",
    requirements: ["package-082"],
    level: "MUST",
    scope: componentsOfType("compose", "Compose archives"),
    owns: byPrefix("archive.", "compose."),
  }),
  ruleCheck({
    id: "package.chart.rules",
    title: "Every Helm chart uses apiVersion v2 and no lookup, hooks or CRDs",
    requirements: ["package-075"],
    level: "MUST",
    scope: componentsOfType("helm", "Helm charts"),
    owns: byPrefix("chart."),
  }),
  ruleCheck({
    id: "package.oci.package-manifest",
    title:
      "The package is one OCI image manifest with the Margo artifactType, empty config, and description and resource layers with their media types and annotations",
    requirements: ["package-078", "registry-078"],
    level: "MUST",
    scope: ociOnly(),
    owns: (p) => p.origin.kind === "oci-package" && p.rule !== "oci.tag-version-mismatch",
  }),
  ruleCheck({
    id: "package.oci.tag-version",
    title: "The package's registry tag equals its metadata.version",
    requirements: ["package-079", "registry-079"],
    level: "MUST",
    scope: ociOnly(),
    owns: (p) => p.origin.kind === "oci-package" && p.rule === "oci.tag-version-mismatch",
  }),
  ruleCheck({
    id: "package.oci.compose-component",
    title:
      "Each Compose component is a Margo compose artifact with one archive layer, type and version annotations, tag = version = revision",
    requirements: ["package-081"],
    level: "MUST",
    scope: ociOnly(hasComponent("compose")),
    owns: fromComponent("compose"),
  }),
  ruleCheck({
    id: "package.oci.helm-chart",
    title: "Each Helm component is a Helm OCI chart tagged with its revision",
    requirements: ["package-101"],
    level: "MUST",
    scope: ociOnly(hasComponent("helm")),
    owns: fromComponent("helm"),
  }),
];
