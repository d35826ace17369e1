import type { admin } from "@margo/proto";
import {
  decodeApplicationDeployment,
  decodeDeploymentStatus,
  decodeDeviceCapabilities,
} from "@margo/proto/wire";
import type {
  ApplicationRecord,
  ClientRecord,
  DeploymentRecord,
  DeviceRecord,
  StatusRecord,
} from "../store/store.js";
import { parseDescription } from "./deployment-builder.js";

/**
 * Store records as the admin API's messages. Stored bodies are the exact bytes devices sent or
 * the WFM served; the decoded models are derived for display and never written back.
 */

export function toAdminClient(record: ClientRecord, wfmSpiffeId: string): admin.Client {
  return {
    clientId: record.clientId,
    spiffeId: `${wfmSpiffeId}/client/${record.clientId}`,
    ...(record.displayName !== undefined ? { displayName: record.displayName } : {}),
    addedAt: record.addedAt,
  };
}

export function toAdminApplication(record: ApplicationRecord): admin.Application {
  return {
    applicationId: record.applicationId,
    version: record.version,
    ociReference: record.ociReference,
    manifestDigest: record.manifestDigest,
    description: parseDescription(record.descriptionYaml).model,
    descriptionYaml: Buffer.from(record.descriptionYaml),
    registeredAt: record.registeredAt,
  };
}

export function toAdminDeployment(record: DeploymentRecord): admin.Deployment {
  const decoded = decodeApplicationDeployment(record.yaml);
  return {
    deploymentId: record.deploymentId,
    clientId: record.clientId,
    deviceId: record.deviceId,
    applicationId: record.applicationId,
    version: record.version,
    ...(decoded.value ? { deployment: decoded.value } : {}),
    yaml: Buffer.from(record.yaml),
    digest: record.digest,
    manifestVersion: record.manifestVersion,
    createdAt: record.createdAt,
  };
}

export function toAdminDevice(record: DeviceRecord): admin.Device {
  const decoded = decodeDeviceCapabilities(record.capabilities);
  return {
    clientId: record.clientId,
    deviceId: record.deviceId,
    ...(decoded.value ? { capabilities: decoded.value } : {}),
    reportedAt: record.receivedAt,
  };
}

export function toAdminStatus(record: StatusRecord): admin.ReportedStatus {
  const decoded = decodeDeploymentStatus(record.body);
  return {
    clientId: record.clientId,
    ...(decoded.value ? { status: decoded.value } : {}),
    reportedAt: record.receivedAt,
  };
}
