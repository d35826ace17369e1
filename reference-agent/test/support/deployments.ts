import type { DeploymentRecord, WireState } from "../../src/state/store.js";

/** A valid rc.3 ApplicationDeployment YAML with the given component names, in order. */
export function deploymentYaml(
  id: string,
  opts: { name?: string; components?: string[]; revision?: string } = {},
): Uint8Array {
  const components = (opts.components ?? ["web"])
    .map(
      (c) =>
        `      - name: ${c}\n        properties:\n          repository: oci://127.0.0.1:5000/margo-t/${c}\n          revision: "${opts.revision ?? "1.0.0"}"\n`,
    )
    .join("");
  return new TextEncoder().encode(
    `id: ${id}\nmetadata:\n  name: ${opts.name ?? `${id}-name`}\n  namespace: margo\n  deviceId: device-1\nspec:\n  applicationId: demo-app\n  deploymentProfile:\n    type: compose\n    components:\n${components}`,
  );
}

/** A record whose components match its YAML, all in `state`. */
export function record(
  id: string,
  state: WireState,
  opts: { components?: string[]; version?: bigint; digest?: string } = {},
): DeploymentRecord {
  const names = opts.components ?? ["web"];
  return {
    deploymentId: id,
    digest: opts.digest ?? `sha256:${"a".repeat(64)}`,
    yaml: deploymentYaml(id, { components: names }),
    adoptedManifestVersion: opts.version ?? 1n,
    desired: "present",
    state,
    components: names.map((name) => ({ name, state })),
    updatedAt: Date.now(),
  };
}
