import { createHash } from "node:crypto";
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Southbound } from "../core/api.js";
import { problemResponse } from "../http/problem.js";
import {
  IdentityError,
  type VerifiedClient,
  type VerifiedOperator,
  type WfmIdentity,
} from "../identity/types.js";
import { problemOf, serviceError } from "./status.js";

/**
 * Who is calling, taken from the TLS peer certificate and nothing else (checklist item 4). The
 * handshake already proved possession of the key and a chain to a current anchor; these checks
 * add the SPIFFE rules (items 6, 9-11, 16) and the accepted-client policy on every call.
 */

/** What a handler sees of the caller's connection: grpc-js's `getAuthContext()`. */
export interface PeerSource {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer; valid_to?: string } };
}

/** Thrown when a call must be refused before any handler runs. */
export class CallerRefusedError extends Error {
  override readonly name = "CallerRefusedError";
  constructor(readonly serviceError: ServiceError) {
    super(serviceError.details);
  }
}

const MAX_CACHE = 10_000;

interface Cached<T> {
  value: T;
  /** The certificate's notAfter: a cached verdict never outlives the certificate. */
  expiresAt: number;
}

/**
 * Verifies callers, remembering each verdict by the SHA-256 of the leaf DER so a long-lived
 * connection's calls cost a hash and a map lookup. Every entry is forgotten when the identity
 * changes (a retired anchor must stop admitting its certificates at once).
 */
export class CallerVerifier {
  private clients = new Map<string, Cached<VerifiedClient>>();
  private operators = new Map<string, Cached<VerifiedOperator>>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly identity: WfmIdentity,
    private readonly core: Pick<Southbound, "isAccepted">,
  ) {
    this.unsubscribe = identity.onChange(() => this.forget());
  }

  /** Drop every cached verdict. */
  forget(): void {
    this.clients = new Map();
    this.operators = new Map();
  }

  close(): void {
    this.unsubscribe();
    this.forget();
  }

  /**
   * The accepted WFM Client behind a WorkloadManagement call. An operator SVID is a known party
   * without the right (PERMISSION_DENIED); anything else that is not a valid client SVID is
   * UNAUTHENTICATED; a retired or never-admitted client gets PERMISSION_DENIED #not-authorized
   * (item 5.4 of the digest, the same problem the REST edge sends as 403).
   */
  client(call: PeerSource): VerifiedClient {
    const { leaf, fingerprint, notAfter } = peerLeaf(call);
    const client = this.lookup(this.clients, fingerprint, notAfter, () =>
      this.identity.verifyClient([leaf]),
    );
    if (client === undefined) {
      throw refusal(this.isOperator(leaf, fingerprint, notAfter), "client SVID required");
    }
    if (!this.core.isAccepted(client.clientId)) {
      throw new CallerRefusedError(
        serviceError(
          status.PERMISSION_DENIED,
          problemOf("not-authorized", `client ${client.clientId} is not accepted by this WFM`),
        ),
      );
    }
    return client;
  }

  /** The operator behind an admin or driver call; a client SVID never gets through. */
  operator(call: PeerSource): VerifiedOperator {
    const { leaf, fingerprint, notAfter } = peerLeaf(call);
    const operator = this.lookup(this.operators, fingerprint, notAfter, () =>
      this.identity.verifyOperator([leaf]),
    );
    if (operator === undefined) {
      const isClient =
        this.lookup(this.clients, fingerprint, notAfter, () =>
          this.identity.verifyClient([leaf]),
        ) !== undefined;
      throw refusal(isClient, "operator SVID required");
    }
    return operator;
  }

  private isOperator(leaf: Buffer, fingerprint: string, notAfter: number): boolean {
    return (
      this.lookup(this.operators, fingerprint, notAfter, () =>
        this.identity.verifyOperator([leaf]),
      ) !== undefined
    );
  }

  /** The cached or fresh verdict; undefined when verification throws IdentityError. */
  private lookup<T>(
    cache: Map<string, Cached<T>>,
    fingerprint: string,
    notAfter: number,
    verify: () => T,
  ): T | undefined {
    const now = Date.now();
    const hit = cache.get(fingerprint);
    if (hit !== undefined && hit.expiresAt > now) return hit.value;
    if (hit !== undefined) cache.delete(fingerprint);
    let value: T;
    try {
      value = verify();
    } catch (err) {
      if (err instanceof IdentityError) return undefined;
      throw err;
    }
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(fingerprint, { value, expiresAt: notAfter });
    return value;
  }
}

function refusal(knownOtherRole: boolean, what: string): CallerRefusedError {
  if (knownOtherRole) {
    return new CallerRefusedError(
      serviceError(status.PERMISSION_DENIED, problemOf("not-authorized", what)),
    );
  }
  // No Margo type fits "not an SVID we accept here" (over REST the handshake or a 403 would
  // answer), so the problem is about:blank with the 401 reason phrase.
  return new CallerRefusedError(
    serviceError(status.UNAUTHENTICATED, problemResponse({ status: 401, detail: what })),
  );
}

/**
 * The DER leaf of the peer. grpc-js exposes only the leaf (getPeerCertificate without the
 * detailed chain); that suffices because the handshake already verified the chain against the
 * current anchors, and the WFM's SVIDs are issued directly by an anchor.
 */
function peerLeaf(call: PeerSource): { leaf: Buffer; fingerprint: string; notAfter: number } {
  const cert = call.getAuthContext().sslPeerCertificate;
  const leaf = cert?.raw;
  if (leaf === undefined || leaf.length === 0) {
    throw refusal(false, "no verified client certificate on this connection");
  }
  const parsed = cert?.valid_to ? Date.parse(cert.valid_to) : Number.NaN;
  return {
    leaf,
    fingerprint: createHash("sha256").update(leaf).digest("hex"),
    notAfter: Number.isNaN(parsed) ? Date.now() : parsed,
  };
}
