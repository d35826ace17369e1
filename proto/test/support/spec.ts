import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ErrorObject } from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

/** WORKLOAD_API and TRUST_API are the verbatim rc.3 OpenAPI files in the spec folder. */
export const WORKLOAD_API = "workload-management-api-1.0.0-rc.3.yaml";
export const TRUST_API = "trust-bundle-api-1.0.0-rc.3.yaml";

/**
 * specDir finds the verbatim spec files: MARGO_SPEC_DIR when set, else the shared folder that
 * CI checks out beside the repository (read-only; tests never write there).
 */
export function specDir(): string {
  const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
  return process.env.MARGO_SPEC_DIR ?? join(repoRoot, "..", "shared", "margo-reference");
}

/** readSpecFile returns one spec file's bytes exactly as stored. */
export function readSpecFile(relative: string): Buffer {
  return readFileSync(join(specDir(), relative));
}

/** OpenApi is the part of an OpenAPI document these tests read. */
export interface OpenApi {
  paths: Record<string, unknown>;
  components: { schemas: Record<string, Record<string, unknown>> };
}

/** loadOpenApi parses one OpenAPI file; every call returns a fresh copy that may be patched. */
export function loadOpenApi(name: string): OpenApi {
  return parse(readSpecFile(name).toString("utf8")) as OpenApi;
}

/**
 * patchWorkloadQuirks fixes, in memory only, the two places where the rc.3 workload API is not
 * valid JSON Schema, so the rest of it can be used verbatim:
 * 1. UnsignedAppStateManifest.required lists dotted names (bundle.mediaType, bundle.digest,
 *    bundle.url) that JSON Schema reads as literal member names "bundle.mediaType"; they are
 *    dropped here (the codec enforces them whenever bundle is an object).
 * 2. appDeploymentMetadata.required lists `annotations`, which has no property definition (a
 *    leftover of the pre-rc.3 metadata.annotations.id); it is dropped.
 */
export function patchWorkloadQuirks(api: OpenApi): OpenApi {
  const s = api.components.schemas;
  const manifest = s.UnsignedAppStateManifest as { required: string[] };
  manifest.required = manifest.required.filter((k) => !k.includes("."));
  const metadata = s.appDeploymentMetadata as { required: string[] };
  metadata.required = metadata.required.filter((k) => k !== "annotations");
  return api;
}

/** SchemaCheck validates one JSON value and returns ajv's errors (empty when valid). */
export type SchemaCheck = (data: unknown) => ErrorObject[];

/**
 * schemaValidator compiles `components/schemas/<name>` of an OpenAPI 3.1 document with ajv's
 * draft 2020-12 dialect. The components are registered under an $id so the spec's own
 * `#/components/schemas/...` references resolve. `strict: false` lets the OpenAPI-only
 * keywords (`example`, `x-go-type`) through as annotations.
 */
export function schemaValidator(api: OpenApi, id: string): (name: string) => SchemaCheck {
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: id, components: api.components });
  return (name) => {
    const validate = ajv.getSchema(`${id}#/components/schemas/${name}`);
    if (!validate) throw new Error(`no schema ${name} in ${id}`);
    return (data) => (validate(data) ? [] : [...(validate.errors ?? [])]);
  };
}

/**
 * exampleOf builds an example body from a schema's `example`/`examples` annotations, composing
 * objects from their properties' examples. Returns undefined when the schema carries none.
 */
export function exampleOf(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null) return undefined;
  const s = schema as Record<string, unknown>;
  if ("example" in s) return s.example;
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  if (s.type === "array") {
    const item = exampleOf(s.items);
    return item === undefined ? undefined : [item];
  }
  if (typeof s.properties === "object" && s.properties !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s.properties)) {
      const e = exampleOf(v);
      if (e !== undefined) out[k] = e;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return undefined;
}
