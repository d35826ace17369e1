import type { admin } from "@margo/proto";
import type { WfmConfig } from "../config.js";

/**
 * What the CLI needs from the composition root (wfm.ts): create a data directory's state and
 * operator credentials, and start the listeners. Kept behind this one adapter so the commands do
 * not depend on how wfm.ts shapes its results.
 */
export interface WfmRuntime {
  initialise(config: WfmConfig, operatorName: string): Promise<admin.ClientCredentials>;
  start(config: WfmConfig): Promise<{
    ports: { management: number; trust: number; grpc: number };
    close(): Promise<void>;
  }>;
}

export async function loadWfmRuntime(): Promise<WfmRuntime> {
  throw new Error("wfm.ts has not landed yet");
}
