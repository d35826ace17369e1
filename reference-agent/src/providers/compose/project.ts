import { createHash } from "node:crypto";
import type { ComponentRef } from "../provider.js";

/**
 * Labels the agent puts on every container it starts. They are how the agent recognises its own
 * workloads after a crash (listInstalled), how observe finds a component without the CLI, and how
 * a vendor sees in `docker ps` which deployment a container belongs to.
 */
export const LABEL = {
  deviceId: "org.margo.device-id",
  deploymentId: "org.margo.deployment-id",
  deploymentName: "org.margo.deployment-name",
  namespace: "org.margo.namespace",
  component: "org.margo.component",
  specHash: "org.margo.spec-hash",
} as const;

/** Label compose itself sets; services are matched to containers by it. */
export const COMPOSE_PROJECT_LABEL = "com.docker.compose.project";
export const COMPOSE_SERVICE_LABEL = "com.docker.compose.service";

const MAX_PROJECT = 63;

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "");
}

/**
 * composeProjectName is a pure function of deploymentId and component name, so a re-apply after a
 * crash finds the same project (compose then updates, never duplicates). The full deploymentId is
 * used, not a prefix as in the sandbox agent, so two deployments can never share a project; an
 * over-long name is cut and suffixed with a hash of the full one to stay unique and readable.
 */
export function composeProjectName(ref: Pick<ComponentRef, "deploymentId" | "componentName">) {
  const full = `${slug(ref.componentName)}-${slug(ref.deploymentId)}`.replace(/^[-_]+/, "");
  const name = /^[a-z0-9]/.test(full) ? full : `m${full}`;
  if (name.length <= MAX_PROJECT) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 10);
  return `${name.slice(0, MAX_PROJECT - 11).replace(/[-_]+$/, "")}-${hash}`;
}

/** The labels of one component's containers (the spec hash is added per apply). */
export function componentLabels(deviceId: string, ref: ComponentRef): Record<string, string> {
  return {
    [LABEL.deviceId]: deviceId,
    [LABEL.deploymentId]: ref.deploymentId,
    [LABEL.deploymentName]: ref.deploymentName,
    [LABEL.namespace]: ref.namespace,
    [LABEL.component]: ref.componentName,
  };
}
