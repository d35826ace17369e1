import type { DeploymentStatusManifest, DeviceCapabilitiesManifest, Problem } from "@margo/proto";
import {
  type Decoded,
  decodeDeploymentStatus,
  decodeDeviceCapabilities,
  parseJson,
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

/** Throws invalid-request when the bytes are not JSON; returns the top-level object if any. */
function parsedRoot(body: Uint8Array, what: string): Record<string, unknown> | undefined {
  const parsed = parseJson(body);
  const syntax = parsed.problems.find((p) => SYNTAX_RULES.has(p.rule));
  if (parsed.value === undefined && syntax) {
    throw new WfmError("invalid-request", `${what} is not valid JSON: ${syntax.message}`);
  }
  return isObject(parsed.value) ? parsed.value : undefined;
}

function valueOrThrow<T>(decoded: Decoded<T>, extra: FieldError[], what: string): T {
  const errors = [...fieldErrors(decoded.problems), ...extra];
  if (decoded.value === undefined || errors.length > 0) {
    throw new WfmError("semantic-error", `${what} breaks ${errors.length} rule(s)`, errors);
  }
  return decoded.value;
}

/**
 * A capabilities body for PUT /api/v1/capabilities/{deviceId}. `properties.id` must equal the
 * path (digest open question 9: the spec is silent; a record reachable under one id but naming
 * another would be ambiguous, so the reference refuses it).
 */
export function readCapabilities(deviceId: string, body: Uint8Array): DeviceCapabilitiesManifest {
  const root = parsedRoot(body, "the capabilities body");
  const decoded = decodeDeviceCapabilities(body);
  const extra: FieldError[] = [];
  const props = root?.properties;
  const id = isObject(props) ? props.id : undefined;
  if (typeof id === "string" && id !== deviceId) {
    extra.push({
      field: "/properties/id",
      message: `properties.id ${JSON.stringify(id)} must equal the path deviceId ${JSON.stringify(deviceId)}`,
    });
  }
  return valueOrThrow(decoded, extra, "the capabilities body");
}

/** A status body for POST /api/v1/deployments/{deploymentId}/status; body id must equal the path. */
export function readStatus(deploymentId: string, body: Uint8Array): DeploymentStatusManifest {
  const root = parsedRoot(body, "the status body");
  const decoded = decodeDeploymentStatus(body);
  const extra: FieldError[] = [];
  const id = root?.deploymentId;
  if (typeof id === "string" && id !== deploymentId) {
    extra.push({
      field: "/deploymentId",
      message: `deploymentId ${JSON.stringify(id)} must equal the path deploymentId ${JSON.stringify(deploymentId)}`,
    });
  }
  return valueOrThrow(decoded, extra, "the status body");
}
