import type { wfmDriver } from "@margo/proto";
import type { Northbound } from "../core/api.js";
import { mutantFeatures } from "../mutants.js";
import { deploymentInput, filter, parameterValues } from "./admin-service.js";
import type { CallerVerifier } from "./peer.js";
import type { GrpcServerOptions } from "./server-contract.js";
import { type ErrorLog, unary } from "./unary.js";

/**
 * WfmDriverService: the adapter through which the conformance suite drives this WFM exactly as
 * it would drive a vendor's. Operator SVIDs only, like the admin service.
 */
export function driverImplementation(
  core: Northbound,
  info: GrpcServerOptions["info"],
  callers: CallerVerifier,
  log: ErrorLog,
): wfmDriver.WfmDriverServiceServer {
  const auth = (call: Parameters<CallerVerifier["operator"]>[0]) => callers.operator(call);
  return {
    publishApplication: unary(
      auth,
      async (req) => {
        const app = await core.registerApplication(req.ociReference, req.plainHttp);
        // Our handle is the application id itself, so no vendor_reference is needed.
        return { applicationId: app.applicationId, version: app.version };
      },
      log,
    ),
    deploy: unary(
      auth,
      async (req) => {
        const d = await core.createDeployment(deploymentInput(req));
        return { deploymentId: d.deploymentId };
      },
      log,
    ),
    updateDeployment: unary(
      auth,
      async (req) => {
        await core.updateDeployment(req.deploymentId, parameterValues(req.parameters));
        return {};
      },
      log,
    ),
    undeploy: unary(
      auth,
      async (req) => {
        await core.deleteDeployment(req.deploymentId);
        return {};
      },
      log,
    ),
    listReportedStatuses: unary(
      auth,
      async (req) => {
        const statuses = await core.listStatuses({
          ...filter(req.clientId, req.deploymentId, "deploymentId"),
          ...(req.includeHistory ? { includeHistory: true } : {}),
        });
        return {
          statuses: statuses.map((s) => ({
            clientId: s.clientId,
            status: s.status,
            receivedAt: s.reportedAt,
          })),
        };
      },
      log,
    ),
    getDeviceCapabilities: unary(
      auth,
      async (req) => {
        const device = await core.getDevice(req.clientId, req.deviceId);
        if (device === undefined) return { found: false };
        return {
          found: true,
          capabilities: device.capabilities,
          receivedAt: device.reportedAt,
        };
      },
      log,
    ),
    info: unary(
      auth,
      async () => ({
        vendor: info.vendor,
        product: info.product,
        version: info.version,
        margoVersion: info.margoVersion,
        // A test-only mutant names itself, so the conformance report shows what it judged.
        features: [...info.features, ...mutantFeatures()],
      }),
      log,
    ),
    reset: unary(
      auth,
      async () => {
        await core.reset();
        return {};
      },
      log,
    ),
  };
}
