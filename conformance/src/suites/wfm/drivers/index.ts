/** Build the configured WfmDriver (gRPC service or shell commands). */
import type { WfmDriverConfig } from "../../../config/types.js";
import type { WfmDriver } from "../context.js";
import { GrpcWfmDriver } from "./grpc-driver.js";
import type { EvidenceRecorder } from "./recorder.js";
import { ShellWfmDriver } from "./shell-driver.js";

export { GrpcWfmDriver } from "./grpc-driver.js";
export { EvidenceRecorder } from "./recorder.js";
export { ShellDriverOutputError, ShellWfmDriver, shellQuote, substitute } from "./shell-driver.js";

/** A driver plus how to let go of it (the gRPC channel). */
export interface OpenedDriver {
  driver: WfmDriver;
  close(): void;
}

export async function openDriver(
  config: WfmDriverConfig,
  wfmSpiffeId: string,
  recorder: EvidenceRecorder,
): Promise<OpenedDriver> {
  if (config.kind === "grpc") {
    const d = await GrpcWfmDriver.open({
      address: config.address,
      certFile: config.certFile,
      keyFile: config.keyFile,
      caFile: config.caFile,
      serverSpiffeId: config.serverSpiffeId ?? wfmSpiffeId,
      recorder,
    });
    return { driver: d, close: () => d.close() };
  }
  return { driver: new ShellWfmDriver({ config, recorder }), close: () => {} };
}
