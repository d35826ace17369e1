import type { DeploymentStatusManifest, DeviceCapabilitiesManifest, Problem } from "@margo/proto";
import {
  type JsonValue,
  parseJson,
  Reader,
  type ReadFn,
  readDeploymentStatus,
  readDeviceCapabilities,
} from "@margo/proto/wire";
import { type FieldError, WfmError } from "./errors.js";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Turning device bodies into model values or WfmErrors (items 29, 71). Malformed JSON is 400
 * #invalid-request; everything else wrong is 422 #semantic-error naming every field at once, so
 * a device vendor sees the whole list in one round trip.
 */

/** Rules that mean "not JSON at all" rather than "JSON that breaks the schema". */
const SYNTAX_RULES = new Set(["wire.syntax"]);

/** Error-severity problems as ProblemDetail errors[] (field = the JSON pointer, "" = root). */
export function fieldErrors(problems: readonly Problem[]): FieldError[] {
  return problems
    .filter((p) => p.severity === "error")
    .map((p) => ({ field: p.pointer, message: `${p.message} (${p.rule})` }));
}

/** A body parsed once: the tree (when it is JSON within the wire limits) and parse problems. */
interface ParsedBody {
  tree?: JsonValue;
  problems: readonly Problem[];
}

/**
 * Parses the bytes once (bodies reach 1 MiB; parsing twice doubled the cost of every PUT and
 * POST). Throws invalid-request when they are not JSON at all.
 */
function parseBody(body: Uint8Array, what: string): ParsedBody {
  const parsed = parseJson(body);
  const syntax = parsed.problems.find((p) => SYNTAX_RULES.has(p.rule));
  if (parsed.value === undefined && syntax) {
    throw new WfmError("invalid-request", `${what} is not valid JSON: ${syntax.message}`);
  }
  return parsed.value === undefined
    ? { problems: parsed.problems }
    : { tree: parsed.value, problems: parsed.problems };
}

/** Maps the parsed tree with the wire reader; throws semantic-error naming every problem. */
function valueOrThrow<T>(
  parsed: ParsedBody,
  read: ReadFn<T>,
  extra: FieldError[],
  what: string,
): T {
  let value: T | undefined;
  const problems = [...parsed.problems];
  if (parsed.tree !== undefined) {
    const r = new Reader();
    value = read(parsed.tree, r);
    problems.push(...r.problems);
  }
  const errors = [...fieldErrors(problems), ...extra];
  if (value === undefined || errors.length > 0) {
    throw new WfmError("semantic-error", `${what} breaks ${errors.length} rule(s)`, errors);
  }
  return value;
}

/**
 * A capabilities body for PUT /api/v1/capabilities/{deviceId}. `properties.id` must equal the
 * path (digest open question 9: the spec is silent; a record reachable under one id but naming
 * another would be ambiguous, so the reference refuses it).
 */
export function readCapabilities(deviceId: string, body: Uint8Array): DeviceCapabilitiesManifest {
  const parsed = parseBody(body, "the capabilities body");
  const root = isObject(parsed.tree) ? parsed.tree : undefined;
  const extra: FieldError[] = [];
  const props = root?.properties;
  const id = isObject(props) ? props.id : undefined;
  if (typeof id === "string" && id !== deviceId) {
    extra.push({
      field: "/properties/id",
      message: `properties.id ${JSON.stringify(id)} must equal the path deviceId ${JSON.stringify(deviceId)}`,
    });
  }
  return valueOrThrow(parsed, readDeviceCapabilities, extra, "the capabilities body");
}

/** A status body for POST /api/v1/deployments/{deploymentId}/status; body id must equal the path. */
export function readStatus(deploymentId: string, body: Uint8Array): DeploymentStatusManifest {
  const parsed = parseBody(body, "the status body");
  const root = isObject(parsed.tree) ? parsed.tree : undefined;
  const extra: FieldError[] = [];
  const id = root?.deploymentId;
  if (typeof id === "string" && id !== deploymentId) {
    extra.push({
      field: "/deploymentId",
      message: `deploymentId ${JSON.stringify(id)} must equal the path deploymentId ${JSON.stringify(deploymentId)}`,
    });
  }
  return valueOrThrow(parsed, readDeploymentStatus, extra, "the status body");
}
