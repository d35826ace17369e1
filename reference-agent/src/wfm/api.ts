import type { ProblemDetail } from "@margo/proto";

/**
 * The Management Interface as the agent calls it (REST over mTLS, rc.3). Bodies are exact bytes:
 * the caller encodes and digests them, the transport never re-serialises.
 */
export interface WfmApi {
  /** PUT /api/v1/capabilities/{deviceId}: 201 created, 200 replaced. */
  putCapabilities(deviceId: string, body: Uint8Array): Promise<{ status: 200 | 201 }>;
  /** DELETE /api/v1/capabilities/{deviceId}: 204. */
  deleteCapabilities(deviceId: string): Promise<void>;
  /** GET /api/v1/deployments with If-None-Match (item 54). */
  getManifest(ifNoneMatch?: string): Promise<ManifestResponse>;
  /**
   * GET a content-addressed artifact by the `url` the manifest gave (`/api/v1/bundles/...` or
   * `/api/v1/deployments/{id}/{digest}`), resolved against the WFM base URL. Returns the decoded
   * body (Content-Encoding removed) exactly; the caller verifies the digest.
   */
  getArtifact(url: string): Promise<Uint8Array>;
  /** POST /api/v1/deployments/{deploymentId}/status: 201 first, 200 later. */
  postStatus(deploymentId: string, body: Uint8Array): Promise<{ status: 200 | 201 }>;
  /** Epoch ms before which no request may be sent (a 429/503 Retry-After, item 86); 0 if none. */
  notBefore(): number;
  /** Drop pooled connections (new trust anchors or SVID take effect on the next request). */
  resetConnections(): void;
  close(): void;
}

export type ManifestResponse =
  | { status: 304 }
  | { status: 200; body: Uint8Array; etag: string | undefined; contentType: string | undefined };

/**
 * Why a request failed, classified the way the client must act on it (digest 4.4, item 86):
 * by problem `type`, `retryable`, `backoffStrategy` and `Retry-After`, never by status alone.
 */
export class WfmRequestError extends Error {
  constructor(
    /**
     * network: no answer (refused, reset, timeout); identity: the server's SVID failed our checks
     * (item 8/9, never retried against the same anchors); http: an error response; deferred: a
     * Retry-After still runs, nothing was sent; protocol: an answer we cannot use (bad media type).
     */
    readonly kind: "network" | "identity" | "http" | "deferred" | "protocol",
    message: string,
    readonly details: {
      status?: number;
      problem?: ProblemDetail;
      /** From the problem's `retryable` (or, without a problem body, 429/500/503). */
      retryable: boolean;
      /** From the problem's `backoffStrategy` (rc.3: none | fixed | exponential). */
      backoff: "exponential" | "fixed" | "none";
      /** Absolute epoch ms from Retry-After, if the answer carried one. */
      retryAt?: number;
      /** svid.* rule or spiffe-id mismatch for kind "identity". */
      rule?: string;
    },
  ) {
    super(message);
    this.name = "WfmRequestError";
  }
}
