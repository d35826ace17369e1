/**
 * The package suite: judges Application Packages given as folders, .tar.gz archives of a package
 * folder, or OCI references (pulled like a WFM pulls them). Sources are resolved and judged once
 * when the suite opens; the checks only sort the found problems into families.
 */
import type { PackageSuiteConfig } from "../../config/types.js";
import type { Suite } from "../../core/types.js";
import { packageChecks } from "./checks.js";
import type { PackageCtx, PackageSource } from "./context.js";
import { classifySource, PackageSourceError, resolveSource } from "./resolve.js";

export type { PackageCtx, PackageSource } from "./context.js";

/**
 * The package section names no usable source. A configuration mistake, not an unavailable
 * suite: raised as SuiteUnavailable it turned every check into a skip and the run read
 * "conformant"; as a plain error the runner errors every check and the exit code is 3.
 */
export class PackageConfigError extends Error {
  override readonly name = "PackageConfigError";
}

export const packageSuite: Suite<PackageCtx, PackageSuiteConfig> = {
  name: "package",
  checks: packageChecks,
  async open(config, io) {
    const specs = config?.sources ?? [];
    if (specs.length === 0)
      throw new PackageConfigError("no package sources configured (package.sources)");
    for (const spec of specs) {
      try {
        classifySource(spec);
      } catch (err) {
        if (err instanceof PackageSourceError) throw new PackageConfigError(err.message);
        throw err;
      }
    }
    const sources: PackageSource[] = [];
    for (const spec of specs) {
      io.log(`resolving ${spec}`);
      const s = await resolveSource(spec, io.workDir);
      const errors = s.problems.filter((p) => p.severity === "error").length;
      io.log(
        s.resolveError !== undefined
          ? `${spec}: could not be resolved: ${s.resolveError}`
          : `${spec}: ${s.kind}, ${s.components.length} component(s), ${errors} problem(s)`,
      );
      sources.push(s);
    }
    const apps = sources.map((s) => (s.appId ? `${s.appId}@${s.version ?? "?"}` : s.spec));
    return {
      ctx: { sources },
      implementation: {
        vendor: "package supplier",
        product: apps.join(", "),
        version: sources.length === 1 ? (sources[0]?.version ?? "unknown") : "various",
        margoVersion: "1.0.0-rc.3",
        features: [...new Set(sources.flatMap((s) => s.components.map((c) => c.type)))].sort(),
        endpoint: specs.join(", "),
      },
      async close() {},
    };
  },
};
