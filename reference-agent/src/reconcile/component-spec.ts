import { createHash } from "node:crypto";
import type { ApplicationDeployment } from "@margo/proto";
import { canonicalJson } from "@margo/proto/wire";
import type { AgentConfig } from "../config.js";
import type { ComponentSpec } from "../providers/provider.js";

/** `timeout` when the deployment gives none (the rc.3 default, digest 2.2). */
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

const TIMEOUT = /^(\d+)m(\d+)s$/;

/**
 * Milliseconds of a `timeout` such as "5m0s". The decoder already enforced the pattern, so an
 * unreadable value only reaches here from a future codec change; it falls back to the default
 * rather than failing a deployment the WFM considered valid.
 */
export function parseTimeout(timeout: string | undefined): number {
  if (timeout === undefined || timeout === "") return DEFAULT_TIMEOUT_MS;
  const m = TIMEOUT.exec(timeout);
  if (!m) return DEFAULT_TIMEOUT_MS;
  return (Number(m[1]) * 60 + Number(m[2])) * 1000;
}

/**
 * A parameter value as the provider's tool reads it: Compose environment values and Helm
 * `--set` values are text. Strings go as they are (no quotes), numbers and booleans as their
 * JSON text, arrays and objects as JSON (rc.3 calls arrays "TBD"; JSON is what both tools parse).
 */
export function parameterText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" || typeof value === "boolean") return JSON.stringify(value);
  if (value === null || value === undefined) return "";
  return canonicalJson(value);
}

/**
 * The OpenTelemetry variables every workload container gets (item 89): the HTTP endpoint always,
 * the others only when the device platform configured them.
 */
export function otelEnv(otel: AgentConfig["otel"]): Record<string, string> {
  const env: Record<string, string> = { HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: otel.httpEndpoint };
  if (otel.grpcEndpoint) env.GRPC_OTEL_EXPORTER_OTLP_ENDPOINT = otel.grpcEndpoint;
  if (otel.certificate) env.OTEL_EXPORTER_OTLP_CERTIFICATE = otel.certificate;
  if (otel.protocol) env.OTEL_EXPORTER_OTLP_PROTOCOL = otel.protocol;
  return env;
}

/**
 * sha256 over the canonical JSON of everything that, when changed, must make a running component
 * be re-applied. Canonical JSON sorts keys, so the hash does not depend on the order parameters
 * were listed in.
 */
export function specHashOf(spec: Omit<ComponentSpec, "specHash" | "deploymentId">): string {
  const material = {
    deploymentName: spec.deploymentName,
    namespace: spec.namespace,
    componentName: spec.componentName,
    repository: spec.repository,
    revision: spec.revision,
    wait: spec.wait,
    timeoutMs: spec.timeoutMs,
    parameters: spec.parameters,
    injectedEnv: spec.injectedEnv,
  };
  return `sha256:${createHash("sha256").update(canonicalJson(material)).digest("hex")}`;
}

/**
 * One ComponentSpec per component of the deployment, in the listed order (item 72). Parameters
 * land only on the components their targets name; a target naming a component that does not
 * exist is ignored, like unknown parameter keys (item 56).
 */
export function componentSpecs(
  deploymentId: string,
  deployment: ApplicationDeployment,
  config: AgentConfig,
): ComponentSpec[] {
  const meta = deployment.metadata;
  const components = deployment.spec?.deploymentProfile?.components ?? [];
  const byComponent = new Map<string, Record<string, string>>();
  for (const c of components) byComponent.set(c.name, {});
  const params = deployment.spec?.parameters ?? {};
  // Sorted so that two parameters targeting the same pointer resolve the same way every time.
  for (const name of Object.keys(params).sort()) {
    const p = params[name];
    if (!p || p.value === undefined) continue;
    const text = parameterText(p.value);
    for (const target of p.targets) {
      for (const componentName of target.components) {
        const into = byComponent.get(componentName);
        if (into) into[target.pointer] = text;
      }
    }
  }
  const injectedEnv = otelEnv(config.otel);
  return components.map((c) => {
    const props = c.properties;
    const base = {
      deploymentName: meta?.name ?? "",
      namespace: meta?.namespace ?? "",
      componentName: c.name,
      repository: props?.repository ?? "",
      revision: props?.revision ?? "",
      wait: props?.wait ?? true,
      timeoutMs: parseTimeout(props?.timeout),
      parameters: byComponent.get(c.name) ?? {},
      injectedEnv: { ...injectedEnv },
    };
    return { deploymentId, ...base, specHash: specHashOf(base) };
  });
}
