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
 * used, not a prefix as in the sandbox agent, so two deployments can never share a project.
 * Slugging is lossy (`api.v1` and `api-v1`, `Web` and `web` give the same slug), and cutting an
 * over-long name is too; whenever the name is not the raw names verbatim, a hash of the raw pair is
 * appended, so two components that differ only in what the slug dropped never share a project
 * (compose would treat the second `up` as an update of the first and remove its containers).
 */
export function composeProjectName(ref: Pick<ComponentRef, "deploymentId" | "componentName">) {
  const component = slug(ref.componentName);
  const deployment = slug(ref.deploymentId);
  const full = `${component}-${deployment}`.replace(/^[-_]+/, "");
  const name = /^[a-z0-9]/.test(full) ? full : `m${full}`;
  const verbatim =
    component === ref.componentName && deployment === ref.deploymentId && name === full;
  if (verbatim && name.length <= MAX_PROJECT) return name;
  // NUL cannot occur in either name, so the pair is encoded unambiguously.
  const hash = createHash("sha256")
    .update(`${ref.componentName}\u0000${ref.deploymentId}`)
    .digest("hex")
    .slice(0, 10);
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
