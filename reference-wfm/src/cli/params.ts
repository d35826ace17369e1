import { readFile } from "node:fs/promises";
import { type JsonValue, parseYaml } from "@margo/proto/wire";
import type { ParameterValues } from "../core/api.js";
import { UsageError } from "./errors.js";

/**
 * Parameter overrides from the command line. `--param k=v` reads v as JSON when it parses
 * (so `port=8080`, `debug=true`, `tags=["a"]` keep their types, which the configuration schema
 * checks), else as the literal string, so `greeting=hello` needs no quoting.
 */
export function parseParamArg(arg: string): [string, unknown] {
  const eq = arg.indexOf("=");
  if (eq <= 0) {
    throw new UsageError(`--param "${arg}" is not key=value: write e.g. --param port=8080`);
  }
  const key = arg.slice(0, eq);
  const text = arg.slice(eq + 1);
  return [key, jsonOrString(text)];
}

function jsonOrString(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A params file is one JSON or YAML object of parameter values. YAML integers beyond 2^53 come
 * back as bigint; protobuf Values are doubles, so such a value is refused rather than rounded.
 */
export async function readParamsFile(path: string): Promise<ParameterValues> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UsageError(`cannot read --params-file ${path}: ${(e as Error).message}`);
  }
  const parsed = parseYaml(bytes); // JSON is YAML 1.2, so one reader covers both
  const errors = parsed.problems.filter((p) => p.severity === "error");
  if (parsed.value === undefined || errors.length > 0) {
    const why = errors.map((p) => `${p.pointer || "/"}: ${p.message}`).join("; ");
    throw new UsageError(`--params-file ${path} is not valid JSON or YAML: ${why}`);
  }
  const value = parsed.value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(
      `--params-file ${path} must hold one object of parameter values, e.g. {"port": 8080}`,
    );
  }
  return toPlain(value, path, "") as ParameterValues;
}

function toPlain(value: JsonValue, path: string, pointer: string): unknown {
  if (typeof value === "bigint") {
    if (Number.isSafeInteger(Number(value))) return Number(value);
    throw new UsageError(
      `--params-file ${path}: ${pointer || "/"} = ${value} does not fit a protobuf Value (a double); pass it as a string`,
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => toPlain(v, path, `${pointer}/${i}`));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, toPlain(v as JsonValue, path, `${pointer}/${k}`)]),
    );
  }
  return value;
}

/** File values first, then `--param` flags on top, so a flag overrides one file entry. */
export async function collectParameters(
  params: readonly string[] | undefined,
  paramsFile: string | undefined,
): Promise<ParameterValues> {
  const out: ParameterValues = paramsFile ? await readParamsFile(paramsFile) : {};
  for (const arg of params ?? []) {
    const [k, v] = parseParamArg(arg);
    out[k] = v;
  }
  return out;
}
