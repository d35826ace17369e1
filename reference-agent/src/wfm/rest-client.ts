import type { AgentIdentity } from "../identity/types.js";
import type { AgentLog } from "../log.js";
import type { ManifestResponse, WfmApi } from "./api.js";

export interface RestClientOptions {
  /** Whole-request timeout; default 30 s. */
  requestTimeoutMs?: number;
  log?: AgentLog;
  /** Pooled connections to the WFM; default 2 (one poll, one status report). */
  maxSockets?: number;
}

/** The Management Interface over mTLS (node:https), server checked by `identity.verifyServer`. */
export class RestWfmClient implements WfmApi {
  constructor(
    readonly baseUrl: string,
    readonly identity: AgentIdentity,
    readonly opts: RestClientOptions = {},
  ) {}
  putCapabilities(_deviceId: string, _body: Uint8Array): Promise<{ status: 200 | 201 }> {
    throw new Error("not implemented");
  }
  deleteCapabilities(_deviceId: string): Promise<void> {
    throw new Error("not implemented");
  }
  getManifest(_ifNoneMatch?: string): Promise<ManifestResponse> {
    throw new Error("not implemented");
  }
  getArtifact(_url: string): Promise<Uint8Array> {
    throw new Error("not implemented");
  }
  postStatus(_deploymentId: string, _body: Uint8Array): Promise<{ status: 200 | 201 }> {
    throw new Error("not implemented");
  }
  notBefore(): number {
    return 0;
  }
  resetConnections(): void {}
  close(): void {}
}
