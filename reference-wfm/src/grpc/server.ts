import { Server } from "@grpc/grpc-js";
import { admin, api, wfmDriver } from "@margo/proto";
import { adminImplementation } from "./admin-service.js";
import { driverImplementation } from "./driver-service.js";
import { CallerVerifier } from "./peer.js";
import type { GrpcServerOptions, RunningGrpcServer, StartGrpcServer } from "./server-contract.js";
import { rotatingServerCredentials } from "./tls-provider.js";
import type { ErrorLog } from "./unary.js";
import { WorkloadManagementHandlers } from "./workload-management.js";

/** How long a graceful close waits for in-flight unary calls before cutting connections. */
const GRACEFUL_CLOSE_MS = 2000;

const defaultLog: ErrorLog = (err) => {
  console.error("margo-wfm grpc: unexpected failure", err);
};

/**
 * Start the gRPC listener: WorkloadManagement (client SVIDs), WfmAdmin and WfmDriver (operator
 * SVIDs), all behind mTLS with the WFM's own SVID. The TLS material follows `identity.onChange`,
 * so CA and SVID rotation need no restart.
 */
export const startGrpcServer: StartGrpcServer = async (
  options: GrpcServerOptions,
): Promise<RunningGrpcServer> => {
  const { core, identity, listen, info } = options;
  const log = defaultLog;
  const tls = rotatingServerCredentials(identity);
  const callers = new CallerVerifier(identity, core);
  const wm = new WorkloadManagementHandlers(core, callers, log);

  const server = new Server();
  server.addService(api.WorkloadManagementServiceService, wm.implementation());
  server.addService(admin.WfmAdminServiceService, adminImplementation(core, callers, log));
  server.addService(
    wfmDriver.WfmDriverServiceService,
    driverImplementation(core, info, callers, log),
  );

  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${listen.port}`, tls.credentials, (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
  } catch (err) {
    tls.stop();
    callers.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        tls.stop();
        callers.close();
        wm.endWatches();
        const timer = setTimeout(() => server.forceShutdown(), GRACEFUL_CLOSE_MS);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
};
