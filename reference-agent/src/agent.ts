import type { RunningAgent, StartAgent } from "./agent-api.js";
import type { AgentConfig } from "./config.js";

/**
 * Compose the agent: store, identity, REST client, trust refresh, providers, capabilities,
 * outbox, reconciler, manifest sync and (optionally) the watch stream.
 */
export const startAgent: StartAgent = async (_config: AgentConfig): Promise<RunningAgent> => {
  throw new Error("startAgent: not implemented yet");
};
