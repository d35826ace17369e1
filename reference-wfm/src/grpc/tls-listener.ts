import { createHash } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import type { ListenAddress } from "../config.js";
import { peerChainDer } from "../http/management-server.js";
import { secureContextOptions } from "../http/tls-options.js";
import { IdentityError, type WfmIdentity } from "../identity/types.js";
import type { PeerChains } from "./peer.js";

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long a connection outlives its SVID or the anchor that authenticated it. Every call and
 * every WatchManifest push is re-verified anyway, so this only lets a stream's own status
 * (UNAUTHENTICATED, PERMISSION_DENIED) reach the client before the socket goes.
 */
const SOCKET_GRACE_MS = 1000;

export interface GrpcTlsListenerOptions {
  identity: WfmIdentity;
  listen: ListenAddress;
  /** Hands an authenticated TLS socket to grpc-js (its connection injector). */
  inject: (socket: TLSSocket) => void;
  /** Test hook for SVID-expiry checks; defaults to the wall clock. */
  now?: () => Date;
}

export interface GrpcTlsListener {
  port: number;
  /** The chain each live peer presented, by leaf fingerprint. */
  chains: PeerChains;
  /** Stop accepting and cut every connection (grpc-js's shutdown has drained them by then). */
  close(): Promise<void>;
}

interface Connection {
  chain: Buffer[];
  fingerprint: string;
  timer: NodeJS.Timeout;
}

/**
 * The gRPC listener's TLS layer, owned here rather than by grpc-js so it is the REST edge's TLS:
 * the same `secureContextOptions` (TLS 1.2 floor with 1.3 preferred, RFC 9325 AEAD suites only,
 * no session tickets, so no resumption extends an authentication: item 13), the full peer chain
 * (grpc-js keeps only the leaf), connections cut when the client's SVID expires, and, on every
 * identity change, a new context for new handshakes plus re-verification of live connections so a
 * retired anchor cannot keep one open. ALPN offers only h2: gRPC needs nothing else.
 */
export async function startGrpcTlsListener(opts: GrpcTlsListenerOptions): Promise<GrpcTlsListener> {
  const { identity, listen, inject } = opts;
  const now = opts.now ?? (() => new Date());
  const connections = new Map<TLSSocket, Connection>();
  const byLeaf = new Map<string, { chain: Buffer[]; sockets: number }>();
  // Every TCP socket, handshaken or not, so close() never waits on a stalled handshake.
  const rawSockets = new Set<Socket>();

  const server = createServer({
    ...secureContextOptions(identity.serverTls(), { withClientCa: true }),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
  });

  /** Whether the chain still names a party this WFM knows: a client or an operator. */
  const stillTrusted = (chain: Buffer[]): boolean => {
    const checks = [
      () => identity.verifyClient(chain, now()),
      () => identity.verifyOperator(chain, now()),
    ];
    for (const verify of checks) {
      try {
        verify();
        return true;
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err;
      }
    }
    return false;
  };

  const cutAfterGrace = (socket: TLSSocket): void => {
    setTimeout(() => socket.destroy(), SOCKET_GRACE_MS).unref();
  };

  server.on("connection", (s: Socket) => {
    rawSockets.add(s);
    s.once("close", () => rawSockets.delete(s));
  });

  server.on("secureConnection", (socket: TLSSocket) => {
    const chain = peerChainDer(socket);
    const leaf = chain[0];
    if (leaf === undefined) {
      socket.destroy();
      return;
    }
    const fingerprint = createHash("sha256").update(leaf).digest("hex");
    // Whether this SVID may call anything is judged per call (with a problem body the client can
    // read); here only its lifetime bounds the connection.
    const validTo = Date.parse(socket.getPeerCertificate().valid_to);
    const left = Number.isNaN(validTo) ? 0 : validTo - now().getTime();
    const timer = setTimeout(
      () => socket.destroy(),
      Math.min(Math.max(0, left) + SOCKET_GRACE_MS, MAX_TIMER_MS),
    );
    timer.unref();
    connections.set(socket, { chain, fingerprint, timer });
    const known = byLeaf.get(fingerprint);
    byLeaf.set(fingerprint, { chain, sockets: (known?.sockets ?? 0) + 1 });
    socket.once("close", () => {
      clearTimeout(timer);
      connections.delete(socket);
      const entry = byLeaf.get(fingerprint);
      if (entry === undefined) return;
      if (entry.sockets <= 1) byLeaf.delete(fingerprint);
      else entry.sockets -= 1;
    });
    // Node only reports socket errors to a listener; the session above us logs nothing useful.
    socket.on("error", () => undefined);
    inject(socket);
  });
  server.on("tlsClientError", () => undefined);

  const unsubscribe = identity.onChange(() => {
    server.setSecureContext(secureContextOptions(identity.serverTls(), { withClientCa: true }));
    for (const [socket, c] of connections) {
      if (!stillTrusted(c.chain)) cutAfterGrace(socket);
    }
  });

  const host = listen.host.includes(":") ? listen.host.replace(/^\[|\]$/g, "") : listen.host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(listen.port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    unsubscribe();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    chains: (fingerprint) => byLeaf.get(fingerprint)?.chain,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        unsubscribe();
        server.close(() => resolve());
        for (const s of rawSockets) s.destroy();
      });
      return closing;
    },
  };
}
