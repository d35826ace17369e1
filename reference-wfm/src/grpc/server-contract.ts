import type { GrpcLimits, ListenAddress } from "../config.js";
import type { Northbound, Southbound } from "../core/api.js";
import type { EdgeLog } from "../http/log.js";
import type { RateLimiter } from "../http/rate-limit.js";
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
  /**
   * Largest request body (capabilities, status) accepted, as over REST: a bigger one is refused
   * with the 413 problem, and grpc-js drops messages beyond this plus a framing margin unread.
   */
  maxBodyBytes?: number;
  /**
   * Per-client budget of WorkloadManagement calls. Pass the REST edge's limiter so a client has
   * ONE budget across both bindings (it cannot double its rate by switching); a plain rate
   * builds a limiter for gRPC alone. Operator services are not limited.
   */
  rateLimit?: RateLimiter | { requestsPerSecond: number; burst: number };
  /**
   * Connection bounds (wfm.json `grpcLimits`); missing keys take the defaults. A connection that
   * never finishes its handshake, never sends the h2 preface or sits idle is closed, and
   * connections beyond `maxConnections` are dropped at accept.
   */
  limits?: Partial<GrpcLimits>;
  /** Where dropped-connection reports go (stderr JSON lines by default). */
  log?: EdgeLog;
  /**
   * Longest life of a connection (default 1 h, as REST) before GOAWAY; tests shorten it.
   * Wins over `limits.maxConnectionAgeMs`.
   */
  maxConnectionAgeMs?: number;
  /** How long calls may finish after that GOAWAY (default 30 s) before the connection is cut. */
  maxConnectionAgeGraceMs?: number;
}

export interface RunningGrpcServer {
  port: number;
  close(): Promise<void>;
}

/** Implemented by grpc/server.ts as `startGrpcServer`. */
export type StartGrpcServer = (options: GrpcServerOptions) => Promise<RunningGrpcServer>;
