import { Server, ServerCredentials } from "@grpc/grpc-js";
import { admin, api, wfmDriver } from "@margo/proto";
import { RateLimiter } from "../http/rate-limit.js";
import { adminImplementation } from "./admin-service.js";
import { driverImplementation } from "./driver-service.js";
import { type CallBudget, CallerVerifier } from "./peer.js";
import type { GrpcServerOptions, RunningGrpcServer, StartGrpcServer } from "./server-contract.js";
import { startGrpcTlsListener } from "./tls-listener.js";
import type { ErrorLog } from "./unary.js";
import { WorkloadManagementHandlers } from "./workload-management.js";

/** How long a graceful close waits for in-flight unary calls before cutting connections. */
const GRACEFUL_CLOSE_MS = 2000;
/** As the REST edge: a bounded age keeps a rotated-out anchor from lingering (item 13). */
const DEFAULT_MAX_CONNECTION_AGE_MS = 60 * 60 * 1000;
/** Room for a WatchManifest client to see GOAWAY and reconnect before its stream is cut. */
const DEFAULT_MAX_CONNECTION_AGE_GRACE_MS = 30_000;
/** Default body limit when none is configured (the REST default). */
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * What a request message may carry beyond its body: protobuf tags and lengths, the ids and
 * header-like fields. Enough for any legitimate request, small next to the body limit.
 */
const FRAMING_MARGIN_BYTES = 16 * 1024;

const defaultLog: ErrorLog = (err) => {
  console.error("margo-wfm grpc: unexpected failure", err);
};

function budgetOf(rateLimit: GrpcServerOptions["rateLimit"]): CallBudget | undefined {
  if (rateLimit === undefined || rateLimit instanceof RateLimiter) return rateLimit;
  return new RateLimiter(rateLimit.requestsPerSecond, rateLimit.burst);
}

/**
 * Start the gRPC listener: WorkloadManagement (client SVIDs), WfmAdmin and WfmDriver (operator
 * SVIDs), all behind mTLS with the WFM's own SVID. TLS is terminated by our own listener (the
 * REST edge's settings, full peer chains, rotation without restart) and each authenticated
 * socket is handed to grpc-js through its connection injector, which then speaks plain h2 on it.
 */
export const startGrpcServer: StartGrpcServer = async (
  options: GrpcServerOptions,
): Promise<RunningGrpcServer> => {
  const { core, identity, listen, info } = options;
  const log = defaultLog;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const server = new Server({
    "grpc.max_connection_age_ms": options.maxConnectionAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS,
    "grpc.max_connection_age_grace_ms":
      options.maxConnectionAgeGraceMs ?? DEFAULT_MAX_CONNECTION_AGE_GRACE_MS,
    "grpc.max_receive_message_length": maxBodyBytes + FRAMING_MARGIN_BYTES,
  });
  // Insecure only as far as grpc-js knows: every socket it gets has finished our mTLS handshake.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const tls = await startGrpcTlsListener({
    identity,
    listen,
    inject: (socket) => injector.injectConnection(socket),
  });
  const callers = new CallerVerifier(identity, core, tls.chains, budgetOf(options.rateLimit));
  const wm = new WorkloadManagementHandlers(core, callers, log, maxBodyBytes);

  server.addService(api.WorkloadManagementServiceService, wm.implementation());
  server.addService(admin.WfmAdminServiceService, adminImplementation(core, callers, log));
  server.addService(
    wfmDriver.WfmDriverServiceService,
    driverImplementation(core, info, callers, log),
  );

  let closing: Promise<void> | undefined;
  return {
    port: tls.port,
    close(): Promise<void> {
      closing ??= (async () => {
        callers.close();
        wm.endWatches();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => server.forceShutdown(), GRACEFUL_CLOSE_MS);
          timer.unref();
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await tls.close();
      })();
      return closing;
    },
  };
};
