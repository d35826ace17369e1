import type { admin } from "@margo/proto";
import type { WfmConfig } from "../config.js";
import { initWfm, startWfm } from "../wfm.js";

/**
 * What the CLI needs from the composition root (wfm.ts): create a data directory's state and the
 * operator's credentials, and start the listeners. One adapter, so the commands do not depend on
 * how wfm.ts shapes its results.
 */
export interface WfmRuntime {
  initialise(config: WfmConfig, operatorName: string): Promise<admin.ClientCredentials>;
  /** Every setting, the Management Interface keep-alive included, comes from `config`. */
  start(config: WfmConfig): Promise<{
    ports: { management: number; trust: number; grpc: number };
    close(): Promise<void>;
  }>;
}

export const wfmRuntime: WfmRuntime = {
  async initialise(config, operatorName) {
    const identity = await initWfm(config);
    try {
      return await identity.mintOperator(operatorName);
    } finally {
      identity.close();
    }
  },
  async start(config) {
    const running = await startWfm(config);
    return {
      ports: {
        management: running.managementPort,
        trust: running.trustPort,
        grpc: running.grpcPort ?? 0,
      },
      close: () => running.close(),
    };
  },
};
