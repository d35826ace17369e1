import { lstat, readdir, readFile, realpath } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import type { ApplicationDescription } from "../gen/margo/model/v1/application_description.js";
import { type Problem, problem } from "../problem.js";
import {
  ArchiveRejectedError,
  packComposeArchive,
  validateComposeArchive,
} from "./archive/index.js";
import { validateHelmChart } from "./chart/index.js";
import type { ApplicationDescriptionDoc } from "./description/index.js";
import { validateDescription } from "./description/index.js";

/**
 * Rules of an Application Package directory (digest 3.1): exactly one margo.yaml, resources it
 * names present, and, for source-form packages that carry `components/<name>/`, every component
 * buildable and valid. Description, archive, compose and chart problems keep their own rule ids.
 */
export interface PackageRule {
  readonly id: string;
  readonly text: string;
  readonly source: string;
}

export const PACKAGE_RULES: readonly PackageRule[] = [
  {
    id: "package.missing-description",
    text: "The package root must contain the Application Description margo.yaml.",
    source: "digest 3.1",
  },
  {
    id: "package.single-description",
    text: "The package root must contain exactly one description file (margo.yaml; no margo.yml beside it).",
    source: "digest 2.6, 3.1",
  },
  {
    id: "package.resource-missing",
    text: "A file named in metadata.catalog.application (icon, descriptionFile, licenseFile, releaseNotes) must exist in the package.",
    source: "digest 2.1 (ApplicationMetadata), 3.1",
  },
  {
    id: "package.resource-path",
    text: "Resource paths must be package-relative and stay inside the package.",
    source: "digest 2.1 (ApplicationMetadata: paths are package-relative)",
  },
  {
    id: "package.component-source-missing",
    text: "A source-form package (with components/) needs components/<name>/ for every helm and compose component.",
    source: "fixture format (fixtures/README.md); digest 3.3-3.4",
  },
];

/** The catalog members that name files packed into the package as resource layers (digest 3.2). */
export const RESOURCE_KEYS = ["descriptionFile", "icon", "licenseFile", "releaseNotes"] as const;

export interface PackageDirOptions {
  /**
   * Supplies the Compose Archive bytes of a component instead of packing components/<name>/;
   * fixtures use it for hostile archives that cannot live in git as files. Returning undefined
   * falls back to packing the directory.
   */
  componentArchive?: (component: string) => Promise<Uint8Array | undefined>;
}

export interface PackageDirResult {
  /** The validated description as the generated model, when margo.yaml has no errors. */
  description?: ApplicationDescription;
  /** The description as written (YAML shape), when margo.yaml has no errors. */
  doc?: ApplicationDescriptionDoc;
  /** The exact margo.yaml text, when one was read. */
  descriptionText?: string;
  problems: Problem[];
}

const DESCRIPTION_NAME = /^margo\.ya?ml$/i;

async function isDir(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Prefixes a nested validator's pointer with where in the package the thing came from. */
function within(prefix: string, problems: readonly Problem[]): Problem[] {
  return problems.map((p) => ({ ...p, pointer: `${prefix}${p.pointer}` }));
}

async function checkResources(
  root: string,
  doc: ApplicationDescriptionDoc,
  out: Problem[],
): Promise<void> {
  const app = doc.metadata.catalog.application ?? {};
  const realRoot = await realpath(root);
  for (const key of RESOURCE_KEYS) {
    const ref = app[key];
    if (ref === undefined) continue;
    const at = `margo.yaml#/metadata/catalog/application/${key}`;
    const rel = ref.replace(/^\.\//, "");
    const target = resolve(root, rel);
    if (isAbsolute(ref) || /^[a-z][a-z0-9+.-]*:/i.test(ref) || !target.startsWith(root + sep)) {
      out.push(problem("package.resource-path", at, `${ref} is not a path inside the package`));
      continue;
    }
    let ok = false;
    try {
      const st = await lstat(target);
      // A symlink leaving the package would smuggle outside files into the published package.
      ok =
        st.isFile() || (st.isSymbolicLink() && (await realpath(target)).startsWith(realRoot + sep));
    } catch {
      ok = false;
    }
    if (!ok)
      out.push(
        problem(
          "package.resource-missing",
          at,
          `${key} names ${ref}, but the package has no such file (${relative(root, target)})`,
        ),
      );
  }
}

async function checkComponents(
  root: string,
  doc: ApplicationDescriptionDoc,
  opts: PackageDirOptions,
  out: Problem[],
): Promise<void> {
  const seen = new Set<string>();
  for (const profile of doc.deploymentProfiles) {
    if (profile.type !== "compose" && profile.type !== "helm") continue;
    for (const comp of profile.components) {
      const key = `${profile.type}/${comp.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const dir = join(root, "components", comp.name);
      const prefix = `components/${comp.name}:`;
      if (profile.type === "compose") {
        let bytes = await opts.componentArchive?.(comp.name);
        if (bytes === undefined) {
          if (!(await isDir(dir))) {
            out.push(missingSource(comp.name));
            continue;
          }
          try {
            bytes = await packComposeArchive(dir, { topDir: comp.name });
          } catch (err) {
            if (err instanceof ArchiveRejectedError) {
              out.push(...within(prefix, err.problems));
              continue;
            }
            throw err;
          }
        }
        const r = await validateComposeArchive(bytes, { componentName: comp.name });
        out.push(...within(prefix, r.problems));
      } else {
        if (!(await isDir(dir))) {
          out.push(missingSource(comp.name));
          continue;
        }
        const r = await validateHelmChart(dir, {
          componentName: comp.name,
          revision: comp.properties.revision,
        });
        out.push(...within(prefix, r.problems));
      }
    }
  }
}

/** refused is the result for a package whose description cannot be read: that one problem. */
function refused(rule: string, at: string, message: string): PackageDirResult {
  return { problems: [problem(rule, at, message)] };
}

function missingSource(name: string): Problem {
  return problem(
    "package.component-source-missing",
    `components/${name}/`,
    `the package has a components/ folder but no components/${name}/ for component ${name}`,
  );
}

/**
 * Validates an Application Package directory: the one margo.yaml (all description rules), the
 * resources it names, and, when the package carries component sources in components/, each
 * Compose component (packed deterministically, then validated as an archive) and Helm chart.
 * Returns every problem; pointers are "margo.yaml#<json pointer>", package paths, or
 * "components/<name>:<nested pointer>".
 */
export async function validatePackageDir(
  dir: string,
  opts: PackageDirOptions = {},
): Promise<PackageDirResult> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    return refused(
      "package.missing-description",
      "margo.yaml",
      `cannot read package directory ${dir}: ${(err as Error).message}`,
    );
  }
  const candidates = names.filter((n) => DESCRIPTION_NAME.test(n)).sort();
  if (candidates.length > 1)
    return refused(
      "package.single-description",
      candidates.join(","),
      `found ${candidates.join(" and ")}; a package holds exactly one description, margo.yaml`,
    );
  if (candidates[0] !== "margo.yaml")
    return refused(
      "package.missing-description",
      "margo.yaml",
      candidates[0]
        ? `found ${candidates[0]}; the description file must be named margo.yaml`
        : "the package root has no margo.yaml",
    );
  let descriptionText: string;
  try {
    descriptionText = await readFile(join(root, "margo.yaml"), "utf8");
  } catch (err) {
    return refused(
      "package.missing-description",
      "margo.yaml",
      `margo.yaml is not a readable file: ${(err as Error).message}`,
    );
  }
  const described = validateDescription(descriptionText);
  const problems = within("margo.yaml#", described.problems);
  const { value, doc } = described;
  if (!value || !doc) return { descriptionText, problems };
  await checkResources(root, doc, problems);
  if (opts.componentArchive || (await isDir(join(root, "components"))))
    await checkComponents(root, doc, opts, problems);
  return { description: value, doc, descriptionText, problems };
}
