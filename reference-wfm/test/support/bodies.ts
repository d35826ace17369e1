/**
 * Request bodies for Management Interface tests, built as plain JSON so each test can break
 * exactly one member. Shapes follow the rc.3 OpenAPI (digest sections 7 and 8).
 */

/** A workload-hosting Compose device with every hosting field a device must report (item 30). */
export function hostingCapabilities(deviceId: string): Record<string, unknown> {
  return {
    properties: {
      id: deviceId,
      vendor: "Margo tests",
      modelNumber: "T-1",
      serialNumber: `sn-${deviceId}`,
      cpus: [{ cores: 2, architecture: "amd64" }],
      memory: "4 Gi",
      storage: "32 Gi",
      peripherals: [],
      interfaces: [{ type: "ethernet" }],
      otelCollector: true,
      supportedRuntimes: ["oci"],
      supportedDeploymentTypes: ["compose"],
    },
  };
}

/** A see-thru gateway that hosts nothing: identity fields only (item 31). */
export function gatewayCapabilities(deviceId: string): Record<string, unknown> {
  return {
    properties: {
      id: deviceId,
      vendor: "Margo tests",
      modelNumber: "GW-1",
      serialNumber: `sn-${deviceId}`,
    },
  };
}

/** A DeploymentStatusManifest (item 66). */
export function statusBody(
  deploymentId: string,
  adoptedManifestVersion: number | bigint,
  state: string,
  components: string[],
): string {
  return `{"deploymentId":${JSON.stringify(deploymentId)},"adoptedManifestVersion":${adoptedManifestVersion},"status":{"state":${JSON.stringify(state)}},"components":[${components
    .map((c) => `{"name":${JSON.stringify(c)},"state":${JSON.stringify(state)}}`)
    .join(",")}]}`;
}
