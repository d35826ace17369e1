import type { ComponentRef, ComponentSpec } from "../provider.js";

/**
 * Helm command lines, built as pure functions so they are tested on machines without Helm or a
 * cluster (like this one), and the provider only spawns what these return.
 */

/** Helm release names: DNS-1123 label, at most 53 characters (Helm's own limit). */
const MAX_RELEASE = 53;

/** Labels on the release (helm --labels, Helm >= 3.13) so the agent recognises its releases. */
export const HELM_LABEL = {
  deviceId: "org.margo.device-id",
  deploymentId: "org.margo.deployment-id",
  component: "org.margo.component",
} as const;

/** The release description carries the spec hash: it may be longer than a label value allows. */
export const SPEC_HASH_PREFIX = "margo spec-hash=";

function dns1123(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * helmReleaseName follows the sandbox agent (digest 11): `<componentName>-<deploymentId[:8]>`,
 * lowercased into a DNS label; deterministic, so a re-apply after a crash upgrades the same release.
 */
export function helmReleaseName(ref: Pick<ComponentRef, "deploymentId" | "componentName">) {
  const id = dns1123(ref.deploymentId).replace(/-/g, "").slice(0, 8);
  const comp = dns1123(ref.componentName)
    .slice(0, MAX_RELEASE - id.length - 1)
    .replace(/-+$/, "");
  return comp === "" ? `c-${id}` : `${comp}-${id}`;
}

/** A label value Kubernetes accepts (63 chars of [A-Za-z0-9_.-], alnum at both ends). */
export function labelValue(s: string): string {
  return s
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}

/** Helm's --set syntax treats `,` and `\` specially in values; escape so a value stays one value. */
export function setValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/,/g, "\\,");
}

/**
 * helmUpgradeArgs: `upgrade --install` (install or upgrade in one idempotent call) in the
 * deployment's namespace; parameters as `--set-string pointer=value` (digest 2.4: Helm targets are
 * --set dot paths; the reconciler already stringified them, so --set-string keeps "007" a string);
 * `--wait --timeout` only with wait (item 72). The OTel variables (item 89) go in through
 * `--post-renderer` (see otel-post-renderer.ts): a chart has no generic place for container
 * environment, so they are added to the rendered manifests instead of passed as values.
 */
export function helmUpgradeArgs(
  deviceId: string,
  spec: ComponentSpec,
  chartPath: string,
  opts: { kubeconfig?: string; postRenderer?: string } = {},
): string[] {
  const release = helmReleaseName(spec);
  const args = [
    "upgrade",
    "--install",
    release,
    chartPath,
    "--namespace",
    spec.namespace,
    "--create-namespace",
    "--description",
    `${SPEC_HASH_PREFIX}${spec.specHash}`,
    "--labels",
    [
      `${HELM_LABEL.deviceId}=${labelValue(deviceId)}`,
      `${HELM_LABEL.deploymentId}=${labelValue(spec.deploymentId)}`,
      `${HELM_LABEL.component}=${labelValue(spec.componentName)}`,
    ].join(","),
  ];
  if (spec.wait) {
    args.push("--wait", "--timeout", `${Math.max(1, Math.ceil(spec.timeoutMs / 1000))}s`);
  }
  for (const [pointer, value] of Object.entries(spec.parameters).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    args.push("--set-string", `${pointer}=${setValue(value)}`);
  }
  if (opts.postRenderer) args.push("--post-renderer", opts.postRenderer);
  if (opts.kubeconfig) args.push("--kubeconfig", opts.kubeconfig);
  return args;
}

/** helmUninstallArgs: uninstall and wait for the resources to go, so "removed" means gone. */
export function helmUninstallArgs(
  ref: ComponentRef,
  opts: { kubeconfig?: string; timeoutMs?: number } = {},
): string[] {
  const args = [
    "uninstall",
    helmReleaseName(ref),
    "--namespace",
    ref.namespace,
    "--wait",
    "--timeout",
    `${Math.ceil((opts.timeoutMs ?? 120_000) / 1000)}s`,
  ];
  if (opts.kubeconfig) args.push("--kubeconfig", opts.kubeconfig);
  return args;
}
