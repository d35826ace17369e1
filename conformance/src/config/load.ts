/**
 * Loads the one configuration file, applies defaults and `MARGO_CONFORMANCE_*` environment
 * overrides for every key, resolves relative paths, and validates. All problems are collected
 * and reported together: a vendor setting up CI should fix their file in one round, not ten.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import type { SuiteName } from "../core/types.js";
import {
  CONFIG_KEYS,
  type ConfigKey,
  ENV_PREFIX,
  envVarName,
  RESERVED_ENV,
  SUITE_SECTIONS,
} from "./keys.js";
import type { ConformanceConfig } from "./types.js";

/** The configuration is unusable; `problems` lists every one found. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export interface LoadOptions {
  /** Base for relative paths given by env vars and for defaults (default process.cwd()). */
  cwd?: string;
  /** Suites chosen on the command line (replaces `suites`; validated like it). */
  suites?: SuiteName[];
}

const KEY_BY_PATH = new Map(CONFIG_KEYS.map((k) => [k.path, k]));
/** Every object node above a key (`wfm`, `wfm.driver`, ...): allowed as mappings in the file. */
const BRANCHES = new Set(
  CONFIG_KEYS.flatMap((k) => {
    const segs = k.path.split(".");
    return segs.slice(0, -1).map((_, i) => segs.slice(0, i + 1).join("."));
  }),
);

type Origin = "file" | "env" | "default";

/**
 * Load and validate. `file` may be omitted (env and defaults only). Throws ConfigError listing
 * every problem: unknown keys, wrong types, missing required keys of a selected suite.
 */
export function loadConfig(
  file?: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: LoadOptions = {},
): ConformanceConfig {
  const cwd = opts.cwd ?? process.cwd();
  const problems: string[] = [];
  let doc: Record<string, unknown> = {};
  let baseDir = cwd;
  if (file !== undefined) {
    const abs = resolve(cwd, file);
    baseDir = dirname(abs);
    let text: string;
    try {
      text = readFileSync(abs, "utf8");
    } catch (err) {
      throw new ConfigError([`cannot read config file ${abs}: ${(err as Error).message}`]);
    }
    let parsed: unknown;
    try {
      parsed = parse(text);
    } catch (err) {
      throw new ConfigError([`config file ${abs} is not valid YAML: ${(err as Error).message}`]);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== "object" || Array.isArray(parsed))
        throw new ConfigError([`config file ${abs}: top level must be a mapping`]);
      doc = parsed as Record<string, unknown>;
    }
  }

  findUnknownKeys(doc, "", problems);
  const envNames = new Map(CONFIG_KEYS.map((k) => [envVarName(k.path), k]));
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !envNames.has(name) && !RESERVED_ENV.has(name)) {
      problems.push(`unknown environment variable ${name} (no such configuration key)`);
    }
  }

  const values = new Map<string, { value: unknown; origin: Origin }>();
  for (const key of CONFIG_KEYS) {
    const envValue = env[envVarName(key.path)];
    if (envValue !== undefined) {
      const v = fromEnv(key, envValue, problems);
      if (v !== undefined)
        values.set(key.path, { value: resolvePaths(key, v, cwd), origin: "env" });
      continue;
    }
    const fileValue = getPath(doc, key.path);
    if (fileValue !== undefined && fileValue !== null) {
      const v = checkType(key, fileValue, `${key.path}`, problems);
      if (v !== undefined)
        values.set(key.path, { value: resolvePaths(key, v, baseDir), origin: "file" });
    }
  }

  // A suite section is configured when the file has it or any of its keys came from env.
  const configured = SUITE_SECTIONS.filter(
    (s) =>
      (doc[s] !== undefined && doc[s] !== null) ||
      [...values.keys()].some((p) => p.startsWith(`${s}.`)),
  );
  for (const key of CONFIG_KEYS) {
    if (values.has(key.path)) continue;
    const section = key.path.split(".")[0] as string;
    if (SUITE_SECTIONS.includes(section as SuiteName) && !configured.includes(section as SuiteName))
      continue;
    let def = key.default;
    if (key.path === "registry.address") def = env.MARGO_REGISTRY ?? key.default;
    if (def !== undefined)
      values.set(key.path, {
        value: resolvePaths(key, structuredClone(def), cwd),
        origin: "default",
      });
  }

  const suites =
    opts.suites ?? (values.get("suites")?.value as SuiteName[] | undefined) ?? configured;
  if (opts.suites) values.set("suites", { value: opts.suites, origin: "default" });
  for (const s of suites) {
    if (!configured.includes(s))
      problems.push(`suite ${s} is selected but the configuration has no '${s}' section`);
  }
  for (const s of configured) if (suites.includes(s)) validateSection(s, values, problems);

  if (problems.length > 0) throw new ConfigError(problems);

  const out: Record<string, unknown> = {};
  for (const [path, { value }] of values) setPath(out, path, value);
  out.suites = [...new Set(suites)];
  return out as unknown as ConformanceConfig;
}

function validateSection(
  s: SuiteName,
  values: Map<string, { value: unknown }>,
  problems: string[],
): void {
  const kind = values.get("wfm.driver.kind")?.value as string | undefined;
  for (const key of CONFIG_KEYS) {
    if (!key.path.startsWith(`${s}.`)) continue;
    const has = values.has(key.path);
    if (key.driverKind !== undefined) {
      if (kind === undefined) continue;
      if (has && key.driverKind !== kind) {
        problems.push(
          `${key.path} only applies to wfm.driver.kind=${key.driverKind} (kind is ${kind})`,
        );
      }
      if (!has && key.required && key.driverKind === kind) problems.push(missing(key, s));
      continue;
    }
    if (!has && key.required) problems.push(missing(key, s));
  }
  if (s === "wfm") {
    const cert = values.has("wfm.ca.certFile");
    const key = values.has("wfm.ca.keyFile");
    if (cert !== key) problems.push("wfm.ca needs both certFile and keyFile (or neither)");
  }
  if (
    s === "device" &&
    !values.has("device.launch.command") &&
    !values.has("device.driver.address")
  ) {
    problems.push(
      `device suite needs device.launch.command (${envVarName("device.launch.command")}) or device.driver.address (${envVarName("device.driver.address")})`,
    );
  }
  if (s === "package") {
    const src = values.get("package.sources")?.value;
    if (Array.isArray(src) && src.length === 0)
      problems.push("package.sources is empty: name at least one package source");
  }
}

function missing(key: ConfigKey, s: SuiteName): string {
  return `missing required key ${key.path} (${envVarName(key.path)}) for suite ${s}`;
}

function findUnknownKeys(node: Record<string, unknown>, prefix: string, problems: string[]): void {
  for (const [k, v] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (KEY_BY_PATH.has(path)) continue;
    if (BRANCHES.has(path)) {
      if (v === null || v === undefined) continue;
      if (typeof v !== "object" || Array.isArray(v)) {
        problems.push(`${path}: expected a mapping, got ${describe(v)}`);
        continue;
      }
      findUnknownKeys(v as Record<string, unknown>, path, problems);
      continue;
    }
    problems.push(`unknown key ${path}`);
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** Check a file value's type; returns it (normalised) or undefined after recording a problem. */
function checkType(key: ConfigKey, v: unknown, where: string, problems: string[]): unknown {
  const bad = (want: string) => {
    problems.push(`${where}: expected ${want}, got ${describe(v)}`);
    return undefined;
  };
  switch (key.type) {
    case "string":
    case "path":
      return typeof v === "string" ? v : bad("a string");
    case "number":
      return typeof v === "number" && Number.isFinite(v) ? v : bad("a number");
    case "boolean":
      return typeof v === "boolean" ? v : bad("true or false");
    case "enum":
      return typeof v === "string" && key.values?.includes(v)
        ? v
        : bad(`one of ${key.values?.join(", ")}`);
    case "string[]":
    case "path[]":
    case "source[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string")
        ? v
        : bad("a list of strings");
    case "enum[]":
      if (!Array.isArray(v)) return bad(`a list of ${key.values?.join(", ")}`);
      {
        const wrong = v.filter((x) => typeof x !== "string" || !key.values?.includes(x));
        return wrong.length === 0
          ? v
          : bad(`a list of ${key.values?.join(", ")} (wrong: ${JSON.stringify(wrong)})`);
      }
    case "record":
      if (typeof v !== "object" || v === null || Array.isArray(v))
        return bad("a mapping of strings");
      return Object.values(v).every((x) => typeof x === "string") ? v : bad("a mapping of strings");
  }
}

/** Parse an env var string into the key's type (lists: JSON or comma-separated). */
function fromEnv(key: ConfigKey, raw: string, problems: string[]): unknown {
  const where = envVarName(key.path);
  const t = raw.trim();
  switch (key.type) {
    case "number": {
      const n = Number(t);
      if (t === "" || !Number.isFinite(n)) {
        problems.push(`${where}: expected a number, got ${JSON.stringify(raw)}`);
        return undefined;
      }
      return n;
    }
    case "boolean":
      if (t === "true") return true;
      if (t === "false") return false;
      problems.push(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
      return undefined;
    case "string[]":
    case "path[]":
    case "source[]":
    case "enum[]": {
      let list: unknown;
      if (t.startsWith("[")) {
        try {
          list = JSON.parse(t);
        } catch (err) {
          problems.push(`${where}: not a JSON list: ${(err as Error).message}`);
          return undefined;
        }
      } else {
        list =
          t === ""
            ? []
            : t
                .split(",")
                .map((s) => s.trim())
                .filter((s) => s !== "");
      }
      return checkType(key, list, where, problems);
    }
    case "record": {
      if (t.startsWith("{")) {
        try {
          return checkType(key, JSON.parse(t), where, problems);
        } catch (err) {
          problems.push(`${where}: not a JSON object: ${(err as Error).message}`);
          return undefined;
        }
      }
      const out: Record<string, string> = {};
      for (const pair of t.split(",").filter((s) => s.trim() !== "")) {
        const eq = pair.indexOf("=");
        if (eq <= 0) {
          problems.push(`${where}: expected a JSON object or k=v,k=v; got ${JSON.stringify(pair)}`);
          return undefined;
        }
        out[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
      }
      return out;
    }
    default:
      return checkType(key, raw, where, problems);
  }
}

/** Resolve relative paths against `base`; templates (`{workdir}/...`) and OCI refs stay as they are. */
function resolvePaths(key: ConfigKey, v: unknown, base: string): unknown {
  const one = (p: string) => (p.startsWith("{") || isAbsolute(p) ? p : resolve(base, p));
  if (key.type === "path" && typeof v === "string") return one(v);
  if (key.type === "path[]" && Array.isArray(v)) return v.map((p) => one(p as string));
  if (key.type === "source[]" && Array.isArray(v)) {
    return v.map((p) => {
      const s = p as string;
      if (isAbsolute(s)) return s;
      if (s.startsWith("./") || s.startsWith("../") || existsSync(resolve(base, s)))
        return resolve(base, s);
      return s;
    });
  }
  return v;
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split(".")) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split(".");
  let cur = obj;
  for (const seg of segs.slice(0, -1)) {
    const next = cur[seg];
    if (next === undefined || next === null || typeof next !== "object") cur[seg] = {};
    cur = cur[seg] as Record<string, unknown>;
  }
  cur[segs[segs.length - 1] as string] = value;
}
