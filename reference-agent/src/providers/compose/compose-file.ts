import { parse } from "yaml";

/**
 * Which services `compose up` will create, read from the archive's compose.yaml by the agent itself.
 * Asking compose (`compose config --services`) costs a whole CLI start (0.25-0.7 s on a small
 * device) on every apply, and the answer is in the file: service names are mapping keys, which
 * compose never interpolates. Only what the file alone cannot tell is left to compose: services
 * pulled in from other files by a top-level `include`.
 */

/** The file needs compose to say which services it defines (see composeServices). */
export interface ServicesUnknown {
  unknown: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The profiles compose activates: none, unless the deployment's variables (which reach compose's
 * environment) set COMPOSE_PROFILES; `*` activates every profile, as in compose v2.
 */
function activeProfiles(vars: Readonly<Record<string, string>>): Set<string> | "all" {
  const list = (vars.COMPOSE_PROFILES ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return list.includes("*") ? "all" : new Set(list);
}

/**
 * composeServices lists the services of a compose.yaml that compose starts with the given
 * variables, sorted: every key of `services` except those whose `profiles` are all inactive.
 * Returns ServicesUnknown when the file is not plain enough to tell (unparsable, `include`, a
 * profile name with `${...}`), so the
 * caller can ask compose instead of guessing.
 */
export function composeServices(
  text: string,
  vars: Readonly<Record<string, string>> = {},
): string[] | ServicesUnknown {
  let root: unknown;
  try {
    // Merge keys (`<<: *base`) as compose reads them; duplicate keys are an error there too.
    root = parse(text, { merge: true, uniqueKeys: true });
  } catch (e) {
    return { unknown: `compose.yaml does not parse: ${(e as Error).message.split("\n")[0]}` };
  }
  if (!isRecord(root)) return { unknown: "compose.yaml is not a mapping" };
  if (root.include !== undefined) return { unknown: "compose.yaml includes other files" };
  if (!isRecord(root.services)) return { unknown: "compose.yaml has no services mapping" };
  const active = activeProfiles(vars);
  const out: string[] = [];
  for (const [name, service] of Object.entries(root.services)) {
    const profiles = isRecord(service) ? service.profiles : undefined;
    if (Array.isArray(profiles) && profiles.length > 0 && active !== "all") {
      // A profile name is a value, so compose interpolates it: only compose knows what it becomes.
      if (profiles.some((p) => String(p).includes("$"))) {
        return { unknown: `service ${name} has an interpolated profile` };
      }
      if (!profiles.some((p) => active.has(String(p)))) continue;
    }
    out.push(name);
  }
  return out.sort();
}
