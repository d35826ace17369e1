// Types only: the "@margo/proto" index also loads the gRPC service modules, which the idle agent
// must not pay for; the codec comes from the lighter "@margo/proto/wire".
import type { DeploymentState, DeploymentStatusManifest, StatusError } from "@margo/proto";
import {
  DEPLOYMENT_STATES,
  decodeApplicationDeployment,
  encodeDeploymentStatus,
} from "@margo/proto/wire";
import type { DeploymentRecord, StatusErrorRecord, WireState } from "../state/store.js";

/** The record cannot be reported as it stands (a reconciler bug, not a WFM or device fault). */
export class StatusDocumentError extends Error {
  override readonly name = "StatusDocumentError";
}

/** Reserved gateway codes (digest 7): their source is always the gateway's device id (item 70). */
export const GATEWAY_CODES = {
  unknownChild: "101",
  childUnreachable: "102",
  autonomousPlacementUnsupported: "103",
} as const;
export type GatewayCode = (typeof GATEWAY_CODES)[keyof typeof GATEWAY_CODES];

export interface StatusBodyOptions {
  /** Reporting for a child of a gateway: only then does the body carry `deviceId` (item 66). */
  childDevice?: boolean;
}

function wireState(state: WireState): DeploymentState {
  const value = DEPLOYMENT_STATES.fromWire(state);
  // A state outside the six rc.3 values would be refused by the WFM with 422 and dead-lettered,
  // so it is stopped here where the bug is (item 67).
  if (value === undefined) throw new StatusDocumentError(`not an rc.3 state: ${String(state)}`);
  return value;
}

function wireError(e: StatusErrorRecord | undefined): StatusError | undefined {
  return e && { code: e.code, source: e.source, message: e.message };
}

/** Component names of a deployment revision, in listed order (item 68). */
export function componentNames(yaml: Uint8Array): string[] {
  const decoded = decodeApplicationDeployment(yaml);
  const components = decoded.value?.spec?.deploymentProfile?.components;
  if (!components) {
    throw new StatusDocumentError(
      `deployment YAML has no readable components: ${decoded.problems.map((p) => `${p.pointer} ${p.message}`).join("; ")}`,
    );
  }
  return components.map((c) => c.name);
}

/**
 * The exact `POST .../status` body for a record (items 66-68): `deploymentId` = the record id (the
 * path parameter the sender uses), `adoptedManifestVersion`, `status.state` as stored (the
 * reconciler sets it by precedence), and exactly one `components[]` entry per component of the
 * record's revision, in listed order. Throws StatusDocumentError when the record's components do
 * not match its YAML: a report breaking item 68 would be refused by a strict WFM and lost.
 * The bytes are canonical JSON (RFC 8785) from the foundation codec.
 */
export function statusBody(
  rec: DeploymentRecord,
  deviceId: string,
  opts: StatusBodyOptions = {},
): Uint8Array {
  const names = componentNames(rec.yaml);
  const have = rec.components.map((c) => c.name);
  if (names.length !== have.length || names.some((n, i) => n !== have[i])) {
    throw new StatusDocumentError(
      `deployment ${rec.deploymentId}: components [${have.join(", ")}] do not match its revision [${names.join(", ")}]`,
    );
  }
  const error = wireError(rec.error);
  const doc: DeploymentStatusManifest = {
    deploymentId: rec.deploymentId,
    ...(opts.childDevice ? { deviceId } : {}),
    adoptedManifestVersion: rec.adoptedManifestVersion,
    status: { state: wireState(rec.state), ...(error ? { error } : {}) },
    components: rec.components.map((c) => {
      const ce = wireError(c.error);
      return { name: c.name, state: wireState(c.state), ...(ce ? { error: ce } : {}) };
    }),
  };
  return encodeDeploymentStatus(doc);
}

/**
 * A deployment-level error: its source is the ApplicationDeployment's `metadata.name` (item 70),
 * read from the record's own revision so it always names what the WFM sent.
 */
export function deploymentError(
  rec: Pick<DeploymentRecord, "deploymentId" | "yaml">,
  code: string,
  message: string,
): StatusErrorRecord {
  const name = decodeApplicationDeployment(rec.yaml).value?.metadata?.name;
  // Without a readable name the id is the only thing that still identifies the deployment.
  return { code, source: name || rec.deploymentId, message };
}

/** A component-level error: its source is the component name (item 70). */
export function componentError(name: string, code: string, message: string): StatusErrorRecord {
  return { code, source: name, message };
}

/** A gateway-generated error (codes 101/102/103): its source is the gateway's device id (item 70). */
export function gatewayError(
  deviceId: string,
  code: GatewayCode,
  message: string,
): StatusErrorRecord {
  return { code, source: deviceId, message };
}
