import type { ListenAddress } from "../config.js";
import type { Northbound, Southbound } from "../core/api.js";
import type { WfmIdentity } from "../identity/types.js";

/** What the composition root (wfm.ts) passes to the gRPC listener (grpc/server.ts). */
export interface GrpcServerOptions {
  core: Southbound & Northbound;
  identity: WfmIdentity;
  listen: ListenAddress;
  /** Answered by WfmDriver.Info. */
  info: {
    vendor: string;
    product: string;
    version: string;
    margoVersion: string;
    features: string[];
  };
}

export interface RunningGrpcServer {
  port: number;
  close(): Promise<void>;
}

/** Implemented by grpc/server.ts as `startGrpcServer`. */
export type StartGrpcServer = (options: GrpcServerOptions) => Promise<RunningGrpcServer>;
