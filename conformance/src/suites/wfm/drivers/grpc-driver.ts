/**
 * WfmDriverService over TLS with a client certificate: the northbound side of a WFM that serves
 * the Margo driver gRPC service (the reference WFM does). The server is accepted on its SPIFFE ID
 * only; refusals of the request itself become WfmDriverRefused so checks can expect them.
 */
import { readFile } from "node:fs/promises";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { type DeploymentStatusManifest, wfmDriver } from "@margo/proto";
import { pemToDer, TrustAnchors } from "@margo/proto/identity";
import { type WfmDriver, WfmDriverRefused, WfmDriverUnsupported } from "../context.js";
import { spiffeServerCheck } from "../wire/wire-client.js";
import type { EvidenceRecorder } from "./recorder.js";

export interface GrpcDriverOptions {
  address: string;
  certFile: string;
  keyFile: string;
  caFile: string;
  /** SPIFFE ID the driver server must present. */
  serverSpiffeId: string;
  recorder: EvidenceRecorder;
  /** Deadline of ordinary calls (publish gets 4x). Default 20 s. */
  deadlineMs?: number;
}

/**
 * gRPC codes meaning "the WFM refused this request", not "the environment broke". The code name
 * travels on WfmDriverRefused: NOT_FOUND and FAILED_PRECONDITION count only where a check names
 * them (isRefusalFor), since "no such deployment" is no answer to "are these parameters valid".
 */
const REFUSAL_CODES = new Set<number>([
  status.INVALID_ARGUMENT,
  status.FAILED_PRECONDITION,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
]);

type Unary = (
  req: unknown,
  md: Metadata,
  opts: { deadline: number },
  cb: (e: ServiceError | null, r: unknown) => void,
) => unknown;

/** Struct values travel as plain JSON in ts-proto's map<string, Value> (unwrapped). */
type Params = Record<string, unknown>;

export class GrpcWfmDriver implements WfmDriver {
  private client: wfmDriver.WfmDriverServiceClient | undefined;
  private readonly deadlineMs: number;

  private constructor(
    private readonly opts: GrpcDriverOptions,
    client: wfmDriver.WfmDriverServiceClient,
  ) {
    this.client = client;
    this.deadlineMs = opts.deadlineMs ?? 20_000;
  }

  /** Read the credential files and build the channel (lazy connect: no traffic yet). */
  static async open(opts: GrpcDriverOptions): Promise<GrpcWfmDriver> {
    const [cert, key, ca] = await Promise.all([
      readFile(opts.certFile),
      readFile(opts.keyFile),
      readFile(opts.caFile),
    ]);
    const td = opts.serverSpiffeId.replace(/^spiffe:\/\//, "").split("/")[0] ?? "";
    const anchors = new TrustAnchors(pemToDer(ca.toString("utf8")));
    const check = spiffeServerCheck(anchors, td, opts.serverSpiffeId);
    const creds = credentials.createSsl(ca, key, cert, { checkServerIdentity: check });
    // SNI must be a DNS name; the SPIFFE check above is what authenticates the server.
    const client = new wfmDriver.WfmDriverServiceClient(opts.address, creds, {
      "grpc.ssl_target_name_override": "localhost",
    });
    return new GrpcWfmDriver(opts, client);
  }

  private call<Res>(method: string, req: unknown, deadlineMs = this.deadlineMs): Promise<Res> {
    const c = this.client;
    if (!c) return Promise.reject(new Error("WfmDriver gRPC client is closed"));
    const at = new Date().toISOString();
    const start = performance.now();
    return new Promise<Res>((resolve, reject) => {
      const fn = (c as unknown as Record<string, Unary>)[method];
      if (!fn) return reject(new Error(`WfmDriverService has no method ${method}`));
      fn.call(c, req, new Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => {
        const durationMs = Math.round(performance.now() - start);
        const rpc = `WfmDriverService/${method}`;
        if (e) {
          this.opts.recorder.record({
            kind: "grpc",
            at,
            durationMs,
            method: rpc,
            request: jsonable(req),
            error: { code: e.code, message: e.details || e.message },
          });
          const msg = `WfmDriver ${method} refused (${status[e.code] ?? e.code}): ${e.details || e.message}`;
          const name = status[e.code] ?? String(e.code);
          reject(
            REFUSAL_CODES.has(e.code)
              ? new WfmDriverRefused(msg, name)
              : e.code === status.UNIMPLEMENTED
                ? new WfmDriverUnsupported(msg)
                : new Error(msg),
          );
          return;
        }
        this.opts.recorder.record({
          kind: "grpc",
          at,
          durationMs,
          method: rpc,
          request: jsonable(req),
          response: jsonable(r),
        });
        resolve(r as Res);
      });
    });
  }

  async info() {
    const r = await this.call<wfmDriver.InfoResponse>("info", {});
    return {
      vendor: r.vendor,
      product: r.product,
      version: r.version,
      margoVersion: r.margoVersion,
      features: [...r.features],
    };
  }

  async reset() {
    await this.call("reset", {});
  }

  async publish(ociReference: string, plainHttp: boolean) {
    const r = await this.call<wfmDriver.PublishApplicationResponse>(
      "publishApplication",
      { ociReference, plainHttp },
      this.deadlineMs * 4,
    );
    return {
      applicationId: r.applicationId,
      version: r.version,
      ...(r.vendorReference ? { vendorReference: r.vendorReference } : {}),
    };
  }

  async deploy(req: Parameters<WfmDriver["deploy"]>[0]) {
    const profile =
      req.profileId !== undefined
        ? { $case: "profileId" as const, value: req.profileId }
        : req.profileType !== undefined
          ? { $case: "profileType" as const, value: req.profileType }
          : undefined;
    const r = await this.call<wfmDriver.DeployResponse>("deploy", {
      applicationId: req.applicationId,
      ...(req.version !== undefined ? { version: req.version } : {}),
      ...(profile ? { profile } : {}),
      clientId: req.clientId,
      deviceId: req.deviceId,
      parameters: (req.parameters ?? {}) as Params,
      ...(req.vendorReference !== undefined ? { vendorReference: req.vendorReference } : {}),
    });
    return { deploymentId: r.deploymentId };
  }

  async update(deploymentId: string, parameters: Record<string, unknown>) {
    await this.call("updateDeployment", { deploymentId, parameters });
  }

  async undeploy(deploymentId: string) {
    await this.call("undeploy", { deploymentId });
  }

  async statuses(req: Parameters<WfmDriver["statuses"]>[0]) {
    const r = await this.call<wfmDriver.ListReportedStatusesResponse>("listReportedStatuses", {
      ...(req.clientId !== undefined ? { clientId: req.clientId } : {}),
      ...(req.deploymentId !== undefined ? { deploymentId: req.deploymentId } : {}),
      ...(req.includeHistory !== undefined ? { includeHistory: req.includeHistory } : {}),
    });
    return r.statuses.map((s) => ({
      clientId: s.clientId,
      status: s.status as DeploymentStatusManifest,
      ...(s.receivedAt ? { receivedAt: s.receivedAt } : {}),
    }));
  }

  async capabilities(clientId: string, deviceId: string) {
    const r = await this.call<wfmDriver.GetDeviceCapabilitiesResponse>("getDeviceCapabilities", {
      clientId,
      deviceId,
    });
    return {
      found: r.found,
      ...(r.found && r.capabilities ? { capabilities: r.capabilities } : {}),
    };
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** Evidence must survive JSON: bigint (uint64) as decimal text, bytes as base64. */
export function jsonable(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x) =>
      typeof x === "bigint"
        ? x.toString()
        : x instanceof Uint8Array
          ? Buffer.from(x).toString("base64")
          : x,
    ),
  );
}
