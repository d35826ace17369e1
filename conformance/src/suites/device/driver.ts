import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import * as dd from "@margo/proto/services/device-driver";
import { DEPLOYMENT_STATES } from "@margo/proto/wire";
import type { CheckTools, ImplementationInfo } from "../../core/types.js";
import type { DeviceStateView, DeviceUnderTest, InstrumentedWfm } from "./context.js";

/**
 * The harness's handle on the device under test: DeviceDriverService over plaintext loopback gRPC,
 * every call carrying `authorization: Bearer <token>`. Configure stands in for the operator who
 * provisions identity (MIAF has no enrollment protocol); every call is kept as `grpc` evidence so a
 * vendor sees what the harness asked of the device.
 */

/** A DeviceDriver call failed: the harness could not drive the device (an error, not a finding). */
export class DeviceDriverError extends Error {
  override readonly name = "DeviceDriverError";
  constructor(
    readonly method: string,
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** How long one unary DeviceDriver call may take (Configure removes workloads first). */
const CALL_TIMEOUT_MS = 60_000;

export interface DeviceDriverClientOptions {
  address: string;
  token: string;
}

/** A thin typed wrapper of the generated client (promises, deadline, evidence). */
export class DeviceDriverClient {
  private readonly client: dd.DeviceDriverServiceClient;
  private readonly md = new Metadata();

  constructor(readonly opts: DeviceDriverClientOptions) {
    this.client = new dd.DeviceDriverServiceClient(opts.address, credentials.createInsecure());
    this.md.set("authorization", `Bearer ${opts.token}`);
  }

  call<Req, Res>(
    method: "configure" | "reset" | "getState" | "info",
    req: Req,
    t?: CheckTools,
    evidenceRequest: unknown = req,
  ): Promise<Res> {
    const started = Date.now();
    const at = new Date(started).toISOString();
    const fn = (
      this.client[method] as unknown as (
        r: Req,
        md: Metadata,
        o: { deadline: number },
        cb: (e: ServiceError | null, res: Res) => void,
      ) => void
    ).bind(this.client);
    return new Promise<Res>((resolve, reject) => {
      fn(req, this.md, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => {
        const durationMs = Date.now() - started;
        const name = `DeviceDriverService/${method[0]?.toUpperCase()}${method.slice(1)}`;
        if (err) {
          t?.evidence({
            kind: "grpc",
            at,
            durationMs,
            method: name,
            request: evidenceRequest,
            error: { code: err.code, message: err.details || err.message },
          });
          reject(
            new DeviceDriverError(name, err.code, `${name} failed: ${err.details || err.message}`),
          );
          return;
        }
        t?.evidence({
          kind: "grpc",
          at,
          durationMs,
          method: name,
          request: evidenceRequest,
          response: res,
        });
        resolve(res);
      });
    });
  }

  async info(): Promise<dd.InfoResponse> {
    return this.call<dd.InfoRequest, dd.InfoResponse>("info", {});
  }

  /** Resolve once Info answers (a launched device may need a moment), else throw. */
  async waitReady(timeoutMs: number): Promise<dd.InfoResponse> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        return await this.info();
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new DeviceDriverError(
      "DeviceDriverService/Info",
      undefined,
      `device driver at ${this.opts.address} not ready after ${timeoutMs} ms: ${(last as Error)?.message}`,
    );
  }

  close(): void {
    this.client.close();
  }
}

/** ImplementationInfo from the device's own Info answer (+ `restart` when the harness can restart it). */
export function implementationInfo(
  info: dd.InfoResponse,
  address: string,
  extra: string[],
): ImplementationInfo {
  return {
    vendor: info.vendor,
    product: info.product,
    version: info.version,
    margoVersion: info.margoVersion,
    features: [...new Set([...info.supportedDeploymentTypes, ...info.supportedRuntimes, ...extra])],
    endpoint: `grpc://${address}`,
  };
}

export interface DriverDeviceOptions {
  client: () => DeviceDriverClient;
  wfm: InstrumentedWfm;
  pollPeriodMs: number;
  /** Stop + start the device process (launcher); undefined when the device was not launched. */
  restartProcess?: () => Promise<void>;
}

/** How long after Configure the device may take to make its first request. */
const FIRST_REQUEST_TIMEOUT_MS = 15_000;

/** DeviceUnderTest over DeviceDriverService, provisioned from the instrumented WFM. */
export function driverDevice(o: DriverDeviceOptions): DeviceUnderTest {
  let deviceId = "";
  const dev: DeviceUnderTest = {
    get deviceId() {
      return deviceId;
    },
    async configure(t, opts) {
      const creds = o.wfm.clientCredentials();
      deviceId = `dev-${creds.clientId}`;
      const req: dd.ConfigureRequest = {
        wfmUrl: o.wfm.url,
        clientSvidChainPem: creds.chainPem,
        privateKeyPem: creds.keyPem,
        trustBundle: { $case: "spiffeBundleJson", value: creds.bundleJson },
        expectedWfmSpiffeId: o.wfm.spiffeId,
        pollPeriodMs: opts?.pollPeriodMs ?? o.pollPeriodMs,
        deviceId,
        ...(opts?.withBundleUrl ? { trustBundleUrl: o.wfm.bundleUrl } : {}),
      };
      const before = o.wfm.requests().length;
      const failedBefore = o.wfm.tlsFailures().length;
      await o.client().call("configure", req, t, {
        ...req,
        privateKeyPem: "[redacted]",
      });
      await o.wfm.waitFor(
        t,
        "the device's first request after Configure",
        () => o.wfm.requests().length > before || o.wfm.tlsFailures().length > failedBefore,
        FIRST_REQUEST_TIMEOUT_MS,
      );
    },
    async reset(t) {
      await o.client().call("reset", {}, t);
    },
    async getState(t): Promise<DeviceStateView> {
      const s = await o.client().call<dd.GetStateRequest, dd.GetStateResponse>("getState", {}, t);
      return {
        ...(s.manifestVersion !== undefined ? { manifestVersion: s.manifestVersion } : {}),
        ...(s.etag !== undefined ? { etag: s.etag } : {}),
        deployments: s.deployments.map((d) => ({
          deploymentId: d.deploymentId,
          digest: d.digest,
          ...stateOf(d.status?.status?.state),
        })),
        lastErrors: s.lastErrors.map((e) => ({
          kind: e.kind,
          message: e.message,
          ...(e.at ? { at: e.at.toISOString() } : {}),
        })),
      };
    },
  };
  if (o.restartProcess) {
    const restart = o.restartProcess;
    dev.restart = async (t) => {
      t.note("restarting the device process");
      await restart();
    };
  }
  return dev;
}

/** The wire word (installed, failed, ...) of a proto DeploymentState, as checks compare it. */
function stateOf(state: number | undefined): { state?: string } {
  if (state === undefined) return {};
  const wire = DEPLOYMENT_STATES.toWire(state);
  return wire === undefined ? {} : { state: wire };
}
