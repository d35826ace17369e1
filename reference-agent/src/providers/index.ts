import { join } from "node:path";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import { ComposeProvider } from "./compose/compose-provider.js";
import { HelmProvider } from "./helm/helm-provider.js";
import type { Provider } from "./provider.js";

/**
 * createProviders builds the enabled providers from the config. Construction touches nothing (no
 * socket, no process): whether a runtime is really there is `probe()`'s answer, reported in
 * capabilities, so a device whose engine starts later still comes up.
 */
export function createProviders(config: AgentConfig, log: AgentLog): Provider[] {
  const providers: Provider[] = [];
  if (config.compose.enabled) {
    providers.push(
      new ComposeProvider({
        deviceId: config.deviceId,
        dockerSocket: config.compose.dockerSocket,
        workDir: join(config.stateDir, "compose"),
        ...(config.compose.command ? { command: config.compose.command } : {}),
        plainHttpRegistries: config.plainHttpRegistries,
        log,
      }),
    );
  }
  if (config.helm.enabled) {
    providers.push(
      new HelmProvider({
        deviceId: config.deviceId,
        helmBinary: config.helm.helmBinary,
        ...(config.helm.kubeconfig ? { kubeconfig: config.helm.kubeconfig } : {}),
        workDir: join(config.stateDir, "helm"),
        plainHttpRegistries: config.plainHttpRegistries,
        log,
      }),
    );
  }
  return providers;
}
