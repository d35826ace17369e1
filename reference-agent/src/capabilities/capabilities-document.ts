import type { DeviceCapabilitiesManifest } from "@margo/proto";
import {
  DEVICE_ARCHITECTURES,
  encodeDeviceCapabilities,
  INTERFACE_TYPES,
  PERIPHERAL_TYPES,
} from "@margo/proto/wire";
import type { AgentConfig } from "../config.js";
import type { HostFacts } from "./host-facts.js";

/** The deployment types a provider can make available (rc.3 wire values). */
export type DeploymentType = "compose" | "helm";

/**
 * Build the capabilities document of this hosting device (items 25, 30-33): identity fields from
 * the provisioned config, hardware from host facts, `supportedDeploymentTypes` from the runtimes
 * whose probe answered now (never from what is merely configured: a WFM would place Helm
 * workloads on a device whose cluster is down). With no runtime available the list is left
 * out (the codec refuses an empty one) and the caller logs why; the device then reports what it
 * is without claiming it can host anything.
 */
export function buildCapabilities(
  config: AgentConfig,
  facts: HostFacts,
  availableTypes: readonly DeploymentType[],
): DeviceCapabilitiesManifest {
  const architectureOf = (a: string | undefined) =>
    a === undefined ? 0 : (DEVICE_ARCHITECTURES.fromWire(a) ?? 0);
  return {
    properties: {
      id: config.deviceId,
      vendor: config.device.vendor,
      modelNumber: config.device.modelNumber,
      serialNumber: config.device.serialNumber,
      cpus: facts.cpus.map((c) => ({
        cores: c.cores,
        architecture: architectureOf(c.architecture),
      })),
      ...(facts.memory !== undefined ? { memory: facts.memory } : {}),
      ...(facts.storage !== undefined ? { storage: facts.storage } : {}),
      peripherals: facts.peripherals.flatMap((p) => {
        const type = PERIPHERAL_TYPES.fromWire(p.type);
        return type === undefined ? [] : [{ type }];
      }),
      interfaces: facts.interfaces.flatMap((i) => {
        const type = INTERFACE_TYPES.fromWire(i.type);
        return type === undefined ? [] : [{ type }];
      }),
      // Item 88: a hosting device must run a collector; the agent ships none, so it reports what
      // the platform operator configured.
      otelCollector: config.otel.collector,
      supportedRuntimes: ["oci"],
      // Sorted, so the same runtimes always give the same bytes (and the same digest).
      supportedDeploymentTypes: [...new Set(availableTypes)].sort(),
    },
    labels: { ...(config.device.labels ?? {}) },
    extensions: {},
  };
}

/** The exact PUT body (canonical JSON, validated by the codec on the way out). */
export function encodeCapabilities(doc: DeviceCapabilitiesManifest): Uint8Array {
  return encodeDeviceCapabilities(doc);
}
