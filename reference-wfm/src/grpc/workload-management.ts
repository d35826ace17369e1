import { type ServerWritableStream, status } from "@grpc/grpc-js";
import type { api, UnsignedAppStateManifest } from "@margo/proto";
import {
  BUNDLE_MEDIA_TYPE,
  decodeStateManifest,
  encodeDeploymentStatus,
  encodeDeviceCapabilities,
  MANIFEST_MEDIA_TYPE,
} from "@margo/proto/wire";
import type { ManifestSnapshot, Southbound } from "../core/api.js";
import { WfmError } from "../core/errors.js";
import { accepts, ifNoneMatchHits } from "../http/negotiation.js";
import { problemResponse } from "../http/problem.js";
import type { VerifiedClient } from "../identity/types.js";
import { CallerRefusedError, type CallerVerifier } from "./peer.js";
import { serviceError, toServiceError } from "./status.js";
import { type ErrorLog, unary } from "./unary.js";

const YAML_MEDIA_TYPE = "application/yaml";
const MAX_DECODED = 1024;
/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The WorkloadManagement binding: one rpc per REST operation with the same semantics, answered
 * from the same core calls, so bodies, digests and ETags are byte-identical to what the REST
 * edge serves (the raw `body` fields carry the exact bytes), plus WatchManifest, which pushes
 * every new manifest instead of waiting for a poll.
 */
export class WorkloadManagementHandlers {
  /** Parsed manifests by ETag: many clients share few revisions, and parsing is the cost. */
  private decoded = new Map<string, UnsignedAppStateManifest | undefined>();
  private readonly watches = new Set<ServerWritableStream<unknown, unknown>>();

  constructor(
    private readonly core: Southbound,
    private readonly callers: CallerVerifier,
    private readonly log: ErrorLog,
    private readonly maxBodyBytes: number = Number.POSITIVE_INFINITY,
  ) {}

  /** The grpc-js implementation object for `api.WorkloadManagementServiceService`. */
  implementation(): api.WorkloadManagementServiceServer {
    const auth = (call: Parameters<CallerVerifier["client"]>[0]) => this.callers.client(call);
    return {
      putCapabilities: unary(auth, (req, c) => this.putCapabilities(req, c), this.log),
      deleteCapabilities: unary(
        auth,
        async (req, c) => {
          await this.core.deleteCapabilities(c.clientId, req.deviceId);
          return {};
        },
        this.log,
      ),
      getManifest: unary(auth, (req, c) => this.getManifest(req, c), this.log),
      getDeployment: unary(auth, (req, c) => this.getDeployment(req, c), this.log),
      getBundle: unary(auth, (req, c) => this.getBundle(req, c), this.log),
      reportStatus: unary(auth, (req, c) => this.reportStatus(req, c), this.log),
      watchManifest: (call) => this.watchManifest(call),
    };
  }

  /** End every open watch (server shutdown), so a graceful close does not wait on them. */
  endWatches(): void {
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  private async putCapabilities(
    req: api.PutCapabilitiesRequest,
    caller: VerifiedClient,
  ): Promise<api.PutCapabilitiesResponse> {
    // The raw body is authoritative (the core must judge what the device sent); a caller that
    // only filled the typed message gets the canonical encoding of it.
    const body =
      req.body.length > 0 || req.manifest === undefined
        ? req.body
        : encodeTyped(() => encodeDeviceCapabilities(req.manifest as never));
    this.checkSize(body);
    return this.core.putCapabilities(caller.clientId, req.deviceId, body);
  }

  /** The REST edge's 413 for the same body, so the limit does not depend on the binding. */
  private checkSize(body: Uint8Array): void {
    if (body.length > this.maxBodyBytes) {
      throw new WfmError("payload-too-large", `the body exceeds ${this.maxBodyBytes} bytes`);
    }
  }

  private async reportStatus(
    req: api.ReportStatusRequest,
    caller: VerifiedClient,
  ): Promise<api.ReportStatusResponse> {
    const body =
      req.body.length > 0 || req.status === undefined
        ? req.body
        : encodeTyped(() => encodeDeploymentStatus(req.status as never));
    this.checkSize(body);
    return this.core.reportStatus(caller.clientId, req.deploymentId, body);
  }

  private async getManifest(
    req: api.GetManifestRequest,
    caller: VerifiedClient,
  ): Promise<api.GetManifestResponse> {
    if (!accepts(req.accept, MANIFEST_MEDIA_TYPE)) {
      throw new WfmError(
        "server-cannot-generate-response",
        `the manifest is only available as ${MANIFEST_MEDIA_TYPE}`,
      );
    }
    const snap = await this.core.manifest(caller.clientId);
    if (ifNoneMatchHits(req.ifNoneMatch, snap.etag)) {
      return { notModified: true, etag: snap.etag, body: Buffer.alloc(0), contentType: "" };
    }
    return {
      notModified: false,
      manifest: this.parsed(snap),
      etag: snap.etag,
      body: snap.body,
      contentType: MANIFEST_MEDIA_TYPE,
    };
  }

  private async getDeployment(
    req: api.GetDeploymentRequest,
    caller: VerifiedClient,
  ): Promise<api.GetDeploymentResponse> {
    const body = await this.core.deploymentYaml(caller.clientId, req.deploymentId, req.digest);
    return contentAddressed(body, req.digest, req.ifNoneMatch, YAML_MEDIA_TYPE);
  }

  private async getBundle(
    req: api.GetBundleRequest,
    caller: VerifiedClient,
  ): Promise<api.GetBundleResponse> {
    const body = await this.core.bundle(caller.clientId, req.digest);
    return contentAddressed(body, req.digest, req.ifNoneMatch, BUNDLE_MEDIA_TYPE);
  }

  /**
   * Subscribe before reading the current manifest, so a change between the two is never lost;
   * versions only grow, so anything not newer than what was sent is a duplicate and skipped.
   * A slow reader gets only the newest pending revision (intermediate ones are obsolete).
   *
   * A stream may live for hours, so the caller is not trusted on the strength of the open alone:
   * it is re-verified before every push and after every identity change (anchor retirement,
   * client removal), and the stream ends when the client's SVID expires.
   */
  private watchManifest(
    call: ServerWritableStream<api.WatchManifestRequest, api.WatchManifestResponse>,
  ): void {
    let caller: VerifiedClient;
    try {
      caller = this.callers.client(call);
    } catch (err) {
      call.emit(
        "error",
        err instanceof CallerRefusedError ? err.serviceError : toServiceError(err, this.log),
      );
      return;
    }
    const stream = call as ServerWritableStream<unknown, unknown>;
    this.watches.add(stream);
    let lastSent = 0n;
    let lastEtag = call.request.ifNoneMatch;
    let pending: ManifestSnapshot | undefined;
    let waitingForDrain = false;
    let closed = false;
    let unsubscribe = (): void => {};
    let unsubscribeIdentity = (): void => {};
    let expiry: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      unsubscribeIdentity();
      clearTimeout(expiry);
      this.watches.delete(stream);
    };
    const fail = (err: unknown): void => {
      if (closed) return;
      stop();
      call.emit(
        "error",
        err instanceof CallerRefusedError ? err.serviceError : toServiceError(err, this.log),
      );
    };
    /** False (and the stream ended with the refusal) when the caller no longer passes. */
    const stillAllowed = (): boolean => {
      try {
        caller = this.callers.recheckClient(call);
        return true;
      } catch (err) {
        fail(err);
        return false;
      }
    };
    const endAtExpiry = (): void => {
      const left = caller.notAfter.getTime() - Date.now();
      if (left > 0) {
        // A far-away notAfter is reached in steps: setTimeout cannot wait that long.
        expiry = setTimeout(endAtExpiry, Math.min(left, MAX_TIMER_MS));
        expiry.unref();
        return;
      }
      fail(
        new CallerRefusedError(
          serviceError(
            status.UNAUTHENTICATED,
            problemResponse({ status: 401, detail: "the client SVID has expired" }),
          ),
        ),
      );
    };

    const send = (snap: ManifestSnapshot): void => {
      if (closed || snap.manifestVersion <= lastSent) return;
      if (lastSent === 0n && ifNoneMatchHits(lastEtag, snap.etag)) {
        // The caller already holds this revision: wait for the next one.
        lastSent = snap.manifestVersion;
        return;
      }
      if (!stillAllowed()) return;
      if (waitingForDrain) {
        pending = snap;
        return;
      }
      lastSent = snap.manifestVersion;
      lastEtag = snap.etag;
      const ok = call.write({ manifest: this.parsed(snap), etag: snap.etag, body: snap.body });
      if (!ok) waitingForDrain = true;
    };
    unsubscribe = this.core.watch(caller.clientId, send);
    unsubscribeIdentity = this.callers.onChange(() => {
      if (!closed) stillAllowed();
    });
    endAtExpiry();
    call.on("drain", () => {
      waitingForDrain = false;
      const next = pending;
      pending = undefined;
      if (next !== undefined) send(next);
    });
    call.on("cancelled", stop);
    call.on("close", stop);
    call.on("finish", stop);
    call.on("error", stop);
    this.core.manifest(caller.clientId).then(send, fail);
  }

  private parsed(snap: ManifestSnapshot): UnsignedAppStateManifest | undefined {
    if (this.decoded.has(snap.etag)) return this.decoded.get(snap.etag);
    const value = decodeStateManifest(snap.body).value;
    if (this.decoded.size >= MAX_DECODED) this.decoded = new Map();
    this.decoded.set(snap.etag, value);
    return value;
  }
}

/**
 * A content-addressed response: the ETag is the quoted sha256 of the exact bytes (item 39). The
 * core only answers a digest with the bytes stored under it, so the requested digest IS that
 * hash (as on the REST edge); hashing a bundle again on every call would only cost CPU.
 */
function contentAddressed(
  body: Buffer,
  digest: string,
  ifNoneMatch: string | undefined,
  contentType: string,
): { notModified: boolean; body: Buffer; etag: string; contentType: string } {
  const etag = `"${digest}"`;
  if (ifNoneMatchHits(ifNoneMatch, etag)) {
    return { notModified: true, body: Buffer.alloc(0), etag, contentType: "" };
  }
  return { notModified: false, body, etag, contentType };
}

/** A typed message the wire encoder refuses is the caller's fault, as a bad JSON body would be. */
function encodeTyped(encode: () => Uint8Array): Buffer {
  try {
    return Buffer.from(encode());
  } catch (err) {
    throw new WfmError(
      "semantic-error",
      `the typed message cannot be encoded: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
