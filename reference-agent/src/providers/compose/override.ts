import type { ComponentSpec } from "../provider.js";
import { componentLabels, LABEL } from "./project.js";

/**
 * The override file the agent adds to a component's own compose.yaml. It lives outside the
 * extracted tree (the archive stays byte-for-byte what was verified) and is written as JSON, which
 * every YAML parser (compose v2's Go one, v1's PyYAML) reads, so no YAML emitter is needed.
 */

/** Compose interpolates `$` in every value, also in an override; `$$` is a literal `$`. */
function literal(value: string): string {
  return value.replaceAll("$", "$$$$");
}

/**
 * composeOverride gives every service our labels (recognition after a crash, observe, spec hash
 * for drift) and the environment: the OTel variables (item 89) and the parameters, which for
 * Compose are environment variables (digest 2.4/11). Parameters win over injected variables of
 * the same name, as they are the deployment's explicit choice.
 */
export function composeOverride(
  deviceId: string,
  spec: ComponentSpec,
  services: readonly string[],
): string {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries({
    ...componentLabels(deviceId, spec),
    [LABEL.specHash]: spec.specHash,
  })) {
    labels[k] = literal(v);
  }
  const environment: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...spec.injectedEnv, ...spec.parameters })) {
    environment[k] = literal(v);
  }
  const out: Record<string, unknown> = {};
  for (const s of services) out[s] = { labels, environment };
  return `${JSON.stringify({ services: out }, null, 2)}\n`;
}

/**
 * The process environment for a compose run: ours, the engine socket, and parameters plus OTel
 * variables, so `${VAR}` in compose.yaml sees them as the spec intends.
 */
export function composeEnv(
  dockerSocket: string,
  vars: Record<string, string>,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...vars, DOCKER_HOST: `unix://${dockerSocket}` };
  // A stray COMPOSE_* from the agent's own environment must not change which project or files
  // compose uses: we always pass -p and -f.
  for (const k of ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "DOCKER_CONTEXT"]) {
    if (!(k in vars)) delete env[k];
  }
  return env;
}
