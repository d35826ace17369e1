import { Server, ServerCredentials } from "@grpc/grpc-js";
import { admin, api, wfmDriver } from "@margo/proto";
import type { GrpcLimits } from "../config.js";
import { stderrLog } from "../http/log.js";
import { RateLimiter } from "../http/rate-limit.js";
import { adminImplementation } from "./admin-service.js";
import { driverImplementation } from "./driver-service.js";
import { type CallBudget, CallerVerifier, type PeerChains } from "./peer.js";
import type { GrpcServerOptions, RunningGrpcServer, StartGrpcServer } from "./server-contract.js";
import { startGrpcTlsListener } from "./tls-listener.js";
import type { ErrorLog } from "./unary.js";
import { WorkloadManagementHandlers } from "./workload-management.js";

/** How long a graceful close waits for in-flight unary calls before cutting connections. */
const GRACEFUL_CLOSE_MS = 2000;
/** Used where the caller passes no limits (wfm.json's `grpcLimits` defaults, as REST's). */
const DEFAULT_LIMITS: GrpcLimits = {
  maxConnections: 20_000,
  handshakeTimeoutMs: 10_000,
  prefaceTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60 * 1000,
  // As the REST edge: a bounded age keeps a rotated-out anchor from lingering (item 13).
  maxConnectionAgeMs: 60 * 60 * 1000,
};
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
  const limits: GrpcLimits = { ...DEFAULT_LIMITS, ...options.limits };

  const server = new Server({
    "grpc.max_connection_age_ms": options.maxConnectionAgeMs ?? limits.maxConnectionAgeMs,
    // grpc-js turns socket timeouts off; without this a connection that stops calling stays open.
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    "grpc.max_connection_age_grace_ms":
      options.maxConnectionAgeGraceMs ?? DEFAULT_MAX_CONNECTION_AGE_GRACE_MS,
    "grpc.max_receive_message_length": maxBodyBytes + FRAMING_MARGIN_BYTES,
  });
  // Insecure only as far as grpc-js knows: every socket it gets has finished our mTLS handshake.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  // The verifier needs the listener's chains, the listener must not accept before the services
  // exist (a call in between would be UNIMPLEMENTED): the lookup is bound once the listener is up.
  let chains: PeerChains = () => undefined;
  const callers = new CallerVerifier(
    identity,
    core,
    (peer, fingerprint) => chains(peer, fingerprint),
    budgetOf(options.rateLimit),
  );
  const wm = new WorkloadManagementHandlers(core, callers, log, maxBodyBytes);
  server.addService(api.WorkloadManagementServiceService, wm.implementation());
  server.addService(admin.WfmAdminServiceService, adminImplementation(core, callers, log));
  server.addService(
    wfmDriver.WfmDriverServiceService,
    driverImplementation(core, info, callers, log),
  );

  let tls: Awaited<ReturnType<typeof startGrpcTlsListener>>;
  try {
    tls = await startGrpcTlsListener({
      identity,
      listen,
      inject: (socket) => injector.injectConnection(socket),
      limits,
      log: options.log ?? stderrLog,
    });
  } catch (err) {
    callers.close();
    server.forceShutdown();
    throw err;
  }
  chains = tls.chains;

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
