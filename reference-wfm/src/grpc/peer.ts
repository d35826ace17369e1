import { createHash } from "node:crypto";
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Southbound } from "../core/api.js";
import { WfmError } from "../core/errors.js";
import { problemResponse } from "../http/problem.js";
import {
  IdentityError,
  type VerifiedClient,
  type VerifiedOperator,
  type WfmIdentity,
} from "../identity/types.js";
import { problemOf, serviceError, toServiceError } from "./status.js";

/**
 * Who is calling, taken from the TLS peer certificate and nothing else (checklist item 4). The
 * handshake already proved possession of the key and a chain to a current anchor; these checks
 * add the SPIFFE rules (items 6, 9-11, 16) and the accepted-client policy on every call.
 */

/** What a handler sees of the caller's connection: grpc-js's `getAuthContext()`. */
export interface PeerSource {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer; valid_to?: string } };
  /** `address:port` of the connection the call came on (how the TLS listener keys chains). */
  getPeer(): string;
}

/** Thrown when a call must be refused before any handler runs. */
export class CallerRefusedError extends Error {
  override readonly name = "CallerRefusedError";
  constructor(readonly serviceError: ServiceError) {
    super(serviceError.details);
  }
}

/**
 * The full chain (leaf first, anchor excluded) presented on the live connection at `peer`
 * (grpc-js's `getPeer()`), provided its leaf has this SHA-256 fingerprint. grpc-js's auth context
 * carries only the leaf, so the TLS listener, which sees the whole handshake, records each
 * connection's chain; without it a leaf issued by an intermediate would fail. Per connection, not
 * per leaf: one leaf may come with different intermediates on different connections.
 */
export type PeerChains = (peer: string, leafFingerprint: string) => Buffer[] | undefined;

/** Per-client call budget (the REST edge's RateLimiter satisfies this). */
export interface CallBudget {
  /** 0 when allowed, else the whole seconds until the client may call again. */
  take(clientId: string): number;
}

const MAX_CACHE = 10_000;

interface Cached<T> {
  value: T;
  /** The verified path's notAfter: a cached verdict never outlives any certificate on it. */
  expiresAt: number;
}

/**
 * Verifies callers, remembering each verdict by the SHA-256 of the whole chain so a long-lived
 * connection's calls cost a hash and a map lookup (a leaf alone could stand for chains with
 * different intermediates). Every entry is forgotten when the identity changes (a retired anchor
 * must stop admitting its certificates at once).
 */
export class CallerVerifier {
  private clients = new Map<string, Cached<VerifiedClient>>();
  private operators = new Map<string, Cached<VerifiedOperator>>();
  private readonly unsubscribe: () => void;
  private readonly changeListeners = new Set<() => void>();

  constructor(
    private readonly identity: WfmIdentity,
    private readonly core: Pick<Southbound, "isAccepted">,
    private readonly chains: PeerChains = () => undefined,
    private readonly budget?: CallBudget,
  ) {
    this.unsubscribe = identity.onChange(() => {
      this.forget();
      // After forgetting, so listeners re-verifying a caller judge it by the new anchors.
      for (const l of [...this.changeListeners]) l();
    });
  }

  /** Drop every cached verdict. */
  forget(): void {
    this.clients = new Map();
    this.operators = new Map();
  }

  /** Run `listener` after each identity change, once stale verdicts are gone. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  close(): void {
    this.unsubscribe();
    this.changeListeners.clear();
    this.forget();
  }

  /**
   * The accepted WFM Client behind a new WorkloadManagement call. An operator SVID is a known
   * party without the right (PERMISSION_DENIED); anything else that is not a valid client SVID is
   * UNAUTHENTICATED. The call is charged to the client's budget before the accepted-client check,
   * so a retired client hammering the WFM is throttled too (RESOURCE_EXHAUSTED, the REST 429
   * problem and `retry-after`); a retired or never-admitted client gets PERMISSION_DENIED
   * #not-authorized (item 5.4 of the digest, the same problem the REST edge sends as 403).
   */
  client(call: PeerSource): VerifiedClient {
    const client = this.identifyClient(call);
    const wait = this.budget?.take(client.clientId) ?? 0;
    if (wait > 0) {
      throw new CallerRefusedError(
        toServiceError(
          new WfmError("rate-limited", "too many requests from this client", [], wait),
          () => undefined,
        ),
      );
    }
    return this.requireAccepted(client);
  }

  /**
   * The same judgement as `client` without charging the budget: a long-lived stream re-checks its
   * caller before each push (the SVID may have expired, its anchor been retired, the client been
   * removed), and those checks are not calls the client made.
   */
  recheckClient(call: PeerSource): VerifiedClient {
    return this.requireAccepted(this.identifyClient(call));
  }

  private identifyClient(call: PeerSource): VerifiedClient {
    const { chain, key, notAfter } = this.peerChain(call);
    const client = this.lookup(this.clients, key, notAfter, () =>
      this.identity.verifyClient(chain),
    );
    if (client === undefined) {
      throw refusal(this.isOperator(chain, key, notAfter), "client SVID required");
    }
    return client;
  }

  /** The chain presented on the call's own connection (or its bare leaf) and its cache key. */
  private peerChain(call: PeerSource): { chain: Buffer[]; key: string; notAfter: number } {
    const { leaf, fingerprint, notAfter } = peerLeaf(call);
    const chain = this.chains(call.getPeer(), fingerprint) ?? [leaf];
    const h = createHash("sha256");
    for (const c of chain) h.update(createHash("sha256").update(c).digest());
    return { chain, key: h.digest("hex"), notAfter };
  }

  private requireAccepted(client: VerifiedClient): VerifiedClient {
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
    const { chain, key, notAfter } = this.peerChain(call);
    const operator = this.lookup(this.operators, key, notAfter, () =>
      this.identity.verifyOperator(chain),
    );
    if (operator === undefined) {
      const isClient =
        this.lookup(this.clients, key, notAfter, () => this.identity.verifyClient(chain)) !==
        undefined;
      throw refusal(isClient, "operator SVID required");
    }
    return operator;
  }

  private isOperator(chain: Buffer[], key: string, notAfter: number): boolean {
    return (
      this.lookup(this.operators, key, notAfter, () => this.identity.verifyOperator(chain)) !==
      undefined
    );
  }

  /**
   * The cached or fresh verdict; undefined when verification throws IdentityError. A verdict is
   * kept until the earlier of the leaf's notAfter and the verified path's.
   */
  private lookup<T extends { notAfter: Date }>(
    cache: Map<string, Cached<T>>,
    key: string,
    leafNotAfter: number,
    verify: () => T,
  ): T | undefined {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit !== undefined && hit.expiresAt > now) return hit.value;
    if (hit !== undefined) cache.delete(key);
    let value: T;
    try {
      value = verify();
    } catch (err) {
      if (err instanceof IdentityError) return undefined;
      throw err;
    }
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(key, { value, expiresAt: Math.min(leafNotAfter, value.notAfter.getTime()) });
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
 * The DER leaf of the peer and its fingerprint, the key under which the TLS listener recorded
 * the full chain (grpc-js's auth context exposes only the leaf).
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
