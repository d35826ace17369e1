/**
 * The agent's identity and trust (items 8-13, 17-24): its own client SVID, the trust anchors it
 * currently accepts, and the one check every WFM connection must pass. The REST transport, the
 * gRPC watch and the bundle refresher all read from here, so a replaced bundle or renewed SVID
 * takes effect everywhere at once.
 */
export interface TlsMaterial {
  /** PEM: leaf then intermediates (item 12). */
  certChainPem: string;
  keyPem: string;
  /** PEM of every anchor in the current bundle (any of them may issue the WFM's chain, item 9). */
  anchorsPem: string;
}

export interface AgentIdentity {
  /** spiffe://<td>/margo/wfm/<wfm-id>/client/<client-id>, from the agent's own SVID. */
  readonly clientSpiffeId: string;
  readonly trustDomain: string;
  /** spiffe://<td>/margo/wfm/<wfm-id> derived from the own SVID: the only server accepted (item 8). */
  readonly expectedWfmId: string;
  /** Current material; a new object after every change. */
  tls(): TlsMaterial;
  /**
   * Check a server chain (DER, leaf first, as the peer sent it) against the current anchors:
   * SVID rules (items 9-11) and the exact WFM SPIFFE ID (item 8) unless `expectedId` overrides it
   * (the trust endpoint may be served by an MIS with another identity in the same domain).
   * Throws IdentityCheckError.
   */
  verifyServer(chainDer: Uint8Array[], expectedId?: string): void;
  /** Called after anchors or the own SVID changed (drop pooled connections, restart watch). */
  onChange(listener: () => void): () => void;
}

/** A server failed our identity check; `rule` is an svid.* rule id or "spiffe-id-mismatch". */
export class IdentityCheckError extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
    this.name = "IdentityCheckError";
  }
}

/**
 * What one refresh of the trust bundle ended in (items 17-24). Anything but `accepted` keeps the
 * current anchors; `kind` is recorded in the store and logged.
 */
export type BundleRefreshOutcome =
  | { result: "accepted"; sequence?: bigint; anchors: number }
  | { result: "unchanged" }
  /**
   * The refresher was stopped while the attempt ran (agent closed or reset): the request was
   * abandoned and nothing was judged, replaced or recorded, because the store may be closed.
   */
  | { result: "aborted" }
  | {
      result: "rejected";
      kind:
        | "trust-bundle-empty"
        | "trust-bundle-regressed"
        | "trust-bundle-invalid"
        | "trust-bundle-not-https"
        | "trust-domain-mismatch"
        | "trust-bundle-unreachable";
      message: string;
    };
