import { type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import type { admin } from "@margo/proto";
import type { CreateDeploymentInput, Northbound, ParameterValues } from "../core/api.js";
import type { CallerVerifier } from "./peer.js";
import { type ErrorLog, unary } from "./unary.js";

/**
 * WfmAdminService: the operator's API, a thin translation onto Northbound. Only operator SVIDs
 * get in; a device's client SVID is refused before any handler runs.
 */
export function adminImplementation(
  core: Northbound,
  callers: CallerVerifier,
  log: ErrorLog,
): admin.WfmAdminServiceServer {
  const auth = (call: Parameters<CallerVerifier["operator"]>[0]) => callers.operator(call);
  return {
    addClient: unary(auth, (req) => core.addClient(req.clientId, req.displayName), log),
    removeClient: unary(
      auth,
      async (req) => {
        await core.removeClient(req.clientId);
        return {};
      },
      log,
    ),
    listClients: unary(auth, async () => ({ clients: await core.listClients() }), log),
    issueClientCredentials: unary(
      auth,
      async (req) => ({
        credentials: await core.issueClientCredentials(
          req.clientId,
          // proto3 cannot tell 0 from absent; 0 means "the WFM's default".
          req.lifetimeSeconds === 0 ? undefined : req.lifetimeSeconds,
        ),
      }),
      log,
    ),
    issueOperatorCredentials: unary(
      auth,
      async (req) => ({
        credentials: await core.issueOperatorCredentials(
          req.name,
          req.lifetimeSeconds === 0 ? undefined : req.lifetimeSeconds,
        ),
      }),
      log,
    ),
    registerApplication: unary(
      auth,
      async (req) => ({
        application: await core.registerApplication(req.ociReference, req.plainHttp),
      }),
      log,
    ),
    listApplications: unary(
      auth,
      async () => ({ applications: await core.listApplications() }),
      log,
    ),
    getApplication: unary(
      auth,
      async (req) => ({ application: await core.getApplication(req.applicationId, req.version) }),
      log,
    ),
    createDeployment: unary(
      auth,
      async (req) => ({ deployment: await core.createDeployment(deploymentInput(req)) }),
      log,
    ),
    deleteDeployment: unary(
      auth,
      async (req) => {
        await core.deleteDeployment(req.deploymentId);
        return {};
      },
      log,
    ),
    updateDeployment: unary(
      auth,
      async (req) => ({
        deployment: await core.updateDeployment(req.deploymentId, parameterValues(req.parameters)),
      }),
      log,
    ),
    listDeployments: unary(
      auth,
      async (req) => ({
        deployments: await core.listDeployments(filter(req.clientId, req.deviceId, "deviceId")),
      }),
      log,
    ),
    listDevices: unary(
      auth,
      async (req) => ({ devices: await core.listDevices(req.clientId) }),
      log,
    ),
    listDeploymentStatuses: unary(
      auth,
      async (req) => ({
        statuses: await core.listStatuses(filter(req.clientId, req.deploymentId, "deploymentId")),
      }),
      log,
    ),
    publishNextAuthority: rotationStep(
      unary(auth, async () => ({ status: await core.publishNextAuthority() }), log),
    ),
    activateNextAuthority: rotationStep(
      unary(auth, async (req) => ({ status: await core.activateNextAuthority(req.force) }), log),
    ),
    retirePreviousAuthorities: rotationStep(
      unary(auth, async () => ({ status: await core.retirePreviousAuthorities() }), log),
    ),
    getAuthorityStatus: unary(auth, async () => ({ status: await core.authorityStatus() }), log),
  };
}

/**
 * A rotation step refused by the CA's state (too early, nothing pending) succeeds later once that
 * state changes, which gRPC spells FAILED_PRECONDITION; the shared table's ALREADY_EXISTS for
 * `conflict` would tell the operator the thing exists. The problem body stays the REST one.
 */
function rotationStep<Req, Res>(
  handler: (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) =>
    handler(call, (err, value) => {
      if (err && "code" in err && err.code === status.ALREADY_EXISTS)
        err.code = status.FAILED_PRECONDITION;
      callback(err, value);
    });
}

/** The fields both CreateDeploymentRequest and the driver's DeployRequest share. */
export interface DeploymentRequestFields {
  applicationId: string;
  version?: string | undefined;
  profile?: { $case: "profileId"; value: string } | { $case: "profileType"; value: string };
  clientId: string;
  deviceId: string;
  parameters: { [key: string]: unknown };
}

/** A create request as the core's input; absent optional fields stay absent. */
export function deploymentInput(req: DeploymentRequestFields): CreateDeploymentInput {
  return {
    applicationId: req.applicationId,
    clientId: req.clientId,
    deviceId: req.deviceId,
    ...(req.version !== undefined ? { version: req.version } : {}),
    ...(req.profile?.$case === "profileId" ? { profileId: req.profile.value } : {}),
    ...(req.profile?.$case === "profileType" ? { profileType: req.profile.value } : {}),
    parameters: parameterValues(req.parameters),
  };
}

/**
 * ts-proto already unwraps `google.protobuf.Value` map entries into plain JSON values (null,
 * number, string, boolean, arrays, objects); copying drops nothing but absent entries.
 */
export function parameterValues(values: { [key: string]: unknown }): ParameterValues {
  const out: ParameterValues = {};
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined)
      Object.defineProperty(out, k, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}

/** Builds a list filter whose absent fields stay absent (an absent field matches everything). */
export function filter<K extends string>(
  clientId: string | undefined,
  other: string | undefined,
  otherKey: K,
): { clientId?: string } & { [P in K]?: string } {
  return {
    ...(clientId !== undefined ? { clientId } : {}),
    ...(other !== undefined ? { [otherKey]: other } : {}),
  } as { clientId?: string } & { [P in K]?: string };
}
