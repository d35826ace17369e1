import type { admin } from "@margo/proto";

/**
 * The WFM's identity as its edges see it (digest section 5). One trust domain, one CA chain that
 * can rotate, the WFM's own SVID, and verification of client and operator SVIDs. Edges refresh
 * their TLS contexts when `onChange` fires, so rotation needs no restart.
 */

/** PEM material for a TLS listener. */
export interface TlsMaterial {
  /** The WFM SVID leaf first, then intermediates (checklist item 12). */
  certChainPem: string;
  keyPem: string;
  /** Every anchor of the current trust bundle, concatenated PEM (item 9: any anchor). */
  anchorsPem: string;
}

/** A client SVID that passed every check of items 6, 9-11 and 16. */
export interface VerifiedClient {
  clientId: string;
  spiffeId: string;
  /**
   * When the verified path stops verifying: the earliest notAfter of the leaf and every
   * certificate above it, so an intermediate expiring first bounds connections and caches.
   */
  notAfter: Date;
}

/** An operator SVID (`spiffe://<td>/operator/<name>`, outside /margo/ as MIAF requires). */
export interface VerifiedOperator {
  name: string;
  spiffeId: string;
  /** As VerifiedClient.notAfter: the end of the whole verified path, not just the leaf. */
  notAfter: Date;
}

/** Why a presented certificate was refused; `rule` is a stable id used in logs and tests. */
export class IdentityError extends Error {
  override readonly name = "IdentityError";
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** A document served by the MIS endpoints, with its strong ETag (quoted sha256 of the bytes). */
export interface ServedDocument {
  body: Buffer;
  etag: string;
}

export interface WfmIdentity {
  readonly trustDomain: string;
  readonly wfmId: string;
  /** spiffe://<td>/margo/wfm/<wfm-id> */
  readonly wfmSpiffeId: string;
  /** Current material for the Management Interface and gRPC listeners. */
  serverTls(): TlsMaterial;
  /** Verify a presented chain (DER, leaf first); throws IdentityError. */
  verifyClient(chainDer: readonly Buffer[], now?: Date): VerifiedClient;
  /** Verify an operator chain for the admin and driver services; throws IdentityError. */
  verifyOperator(chainDer: readonly Buffer[], now?: Date): VerifiedOperator;
  /** GET /.well-known/margo body; `trustBundleUri` is built from the configured public base URL. */
  discoveryDocument(): ServedDocument;
  /** The SPIFFE bundle document (spiffe_sequence, spiffe_refresh_hint, x509-svid keys). */
  spiffeBundle(): ServedDocument;
  /** Mint a client SVID (P-256, leaf + chain, default lifetime from config). */
  mintClient(clientId: string, lifetimeSeconds?: number): Promise<admin.ClientCredentials>;
  /** Mint operator credentials for the CLI (same shape as client credentials). */
  mintOperator(name: string, lifetimeSeconds?: number): Promise<admin.ClientCredentials>;
  /**
   * CA rotation in the three steps of digest 5.6, so no device ever meets a certificate it cannot
   * verify. Step 1: a new root joins the bundle (spiffe_sequence + 1); issuance and the WFM SVID
   * stay on the current root. WfmError `conflict` while a published root is not yet active.
   */
  publishNextAuthority(): Promise<admin.AuthorityStatus>;
  /**
   * Step 2: the published root issues from now on and the WFM SVID is re-minted from it (fires
   * onChange). WfmError `conflict` when nothing is published, or before `bundleRefreshHintSeconds`
   * have passed since publishing unless `force` (the message says when it becomes allowed).
   */
  activateNextAuthority(force?: boolean): Promise<admin.AuthorityStatus>;
  /**
   * Step 3: drop every anchor that neither issues nor waits for activation (spiffe_sequence + 1
   * when one goes). A no-op when there is none.
   */
  retirePreviousAuthorities(): Promise<admin.AuthorityStatus>;
  /** The bundle's anchors with their roles, and when a pending activation stops needing force. */
  authorityStatus(): admin.AuthorityStatus;
  /** Called after any change of serverTls() or the bundle; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}
