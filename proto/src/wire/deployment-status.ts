import {
  type ComponentStatus,
  DeploymentState,
  type DeploymentStatusManifest,
  type StatusError,
} from "../gen/margo/model/v1/deployment_status.js";
import { pointer } from "../problem.js";
import { type Decoded, decodeJson, encodeJson } from "./codec.js";
import { enumMap } from "./enum-map.js";
import type { JsonObject, JsonValue } from "./json-value.js";
import type { Reader } from "./reader.js";

/** DEVICE_ID is the OpenAPI DeviceId pattern (RFC 3986 unreserved characters, "/" for children). */
export const DEVICE_ID = /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/;

/** DEPLOYMENT_STATES maps DeploymentState to pending|installing|installed|failed|removing|removed. */
export const DEPLOYMENT_STATES = enumMap<DeploymentState>(
  DeploymentState,
  "DEPLOYMENT_STATE_",
  "lower",
);

/** Bodies of the RFC 9421 era carried apiVersion/kind (digest 0.2); rc.3 dropped them. */
const LEGACY_ENVELOPE = {
  apiVersion: "rc.3 bodies carry no apiVersion",
  kind: "rc.3 bodies carry no kind",
};

function readError(r: Reader, obj: JsonObject, at: string): StatusError | undefined {
  if (!Object.hasOwn(obj, "error")) return undefined;
  const here = at + pointer("error");
  const e = r.object(obj.error, here, "error");
  if (!e) return undefined;
  r.members(e, here, { known: ["code", "source", "message"], closed: false });
  const code = r.string(e, "code", here);
  const source = r.string(e, "source", here);
  const message = r.string(e, "message", here);
  return {
    ...(code !== undefined ? { code } : {}),
    ...(source !== undefined ? { source } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}

function readComponentStatus(r: Reader, v: JsonValue, at: string): ComponentStatus | undefined {
  const obj = r.object(v, at, "component status");
  if (!obj) return undefined;
  r.members(obj, at, { known: ["name", "state", "error"], closed: false });
  const name = r.string(obj, "name", at, { required: true });
  const state = r.enumValue(obj, "state", at, DEPLOYMENT_STATES, true);
  const error = readError(r, obj, at);
  if (name === undefined || state === undefined) return undefined;
  return { name, state, ...(error ? { error } : {}) };
}

/** readDeploymentStatus maps a parsed DeploymentStatusManifest, reporting every problem. */
export function readDeploymentStatus(
  tree: JsonValue,
  r: Reader,
): DeploymentStatusManifest | undefined {
  const obj = r.object(tree, "", "deployment status");
  if (!obj) return undefined;
  r.members(obj, "", {
    known: ["deploymentId", "deviceId", "adoptedManifestVersion", "status", "components"],
    closed: false,
    legacy: LEGACY_ENVELOPE,
  });
  const deploymentId = r.string(obj, "deploymentId", "", { required: true });
  const deviceId = r.string(obj, "deviceId", "", { pattern: DEVICE_ID });
  const adoptedManifestVersion = r.uint64(obj, "adoptedManifestVersion", "", {
    required: true,
    min: 1n,
  });
  let state: DeploymentState | undefined;
  let error: StatusError | undefined;
  const statusAt = pointer("status");
  const statusValue = r.present(obj, "status", "", true);
  if (statusValue !== undefined) {
    const status = r.object(statusValue, statusAt, "status");
    if (status) {
      r.members(status, statusAt, { known: ["state", "error"], closed: false });
      state = r.enumValue(status, "state", statusAt, DEPLOYMENT_STATES, true);
      error = readError(r, status, statusAt);
    }
  }
  const items = r.array(obj, "components", "", { required: true });
  const components: ComponentStatus[] = [];
  let complete = items !== undefined;
  items?.forEach((item, i) => {
    const c = readComponentStatus(r, item, pointer("components", i));
    if (c) components.push(c);
    else complete = false;
  });
  if (
    deploymentId === undefined ||
    adoptedManifestVersion === undefined ||
    state === undefined ||
    !complete
  ) {
    return undefined;
  }
  return {
    deploymentId,
    ...(deviceId !== undefined ? { deviceId } : {}),
    adoptedManifestVersion,
    status: { state, ...(error ? { error } : {}) },
    components,
  };
}

function writeError(e: StatusError | undefined): JsonValue | undefined {
  if (!e) return undefined;
  return { code: e.code, source: e.source, message: e.message } as JsonValue;
}

function writeDeploymentStatus(m: DeploymentStatusManifest): JsonValue {
  return {
    deploymentId: m.deploymentId,
    deviceId: m.deviceId,
    adoptedManifestVersion: m.adoptedManifestVersion,
    status: {
      state: m.status ? DEPLOYMENT_STATES.toWire(m.status.state) : undefined,
      error: writeError(m.status?.error),
    },
    components: m.components.map((c) => ({
      name: c.name,
      state: DEPLOYMENT_STATES.toWire(c.state),
      error: writeError(c.error),
    })),
  } as JsonValue;
}

/**
 * encodeDeploymentStatus writes a `POST .../status` body as canonical JSON with lowercase
 * states. Throws ValidationError for an unspecified state or adoptedManifestVersion 0.
 */
export function encodeDeploymentStatus(value: DeploymentStatusManifest): Uint8Array {
  return encodeJson("deployment status", writeDeploymentStatus(value), readDeploymentStatus);
}

/** decodeDeploymentStatus reads a status report body; never throws. */
export function decodeDeploymentStatus(
  input: Uint8Array | string,
): Decoded<DeploymentStatusManifest> {
  return decodeJson(input, readDeploymentStatus);
}
