import { createHash } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import type { GrpcLimits, ListenAddress } from "../config.js";
import { capConnections } from "../http/connection-limits.js";
import type { EdgeLog } from "../http/log.js";
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
  /**
   * Hands an authenticated TLS socket to grpc-js (its connection injector), once the client has
   * sent its first bytes (the h2 preface), which are put back for grpc-js to read.
   */
  inject: (socket: TLSSocket) => void;
  limits: Pick<GrpcLimits, "maxConnections" | "handshakeTimeoutMs" | "prefaceTimeoutMs">;
  log: EdgeLog;
  /** Test hook for SVID-expiry checks; defaults to the wall clock. */
  now?: () => Date;
}

export interface GrpcTlsListener {
  port: number;
  /** The chain each live connection presented, by its peer address. */
  chains: PeerChains;
  /** Stop accepting and cut every connection (grpc-js's shutdown has drained them by then). */
  close(): Promise<void>;
}

interface Connection {
  chain: Buffer[];
  timer: NodeJS.Timeout;
}

/** The connection key grpc-js's `call.getPeer()` reports for the same socket. */
function peerKey(socket: Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${remoteAddress}:${remotePort}`;
}

/**
 * The gRPC listener's TLS layer, owned here rather than by grpc-js so it is the REST edge's TLS:
 * the same `secureContextOptions` (TLS 1.2 floor with 1.3 preferred, RFC 9325 AEAD suites only,
 * no session tickets, so no resumption extends an authentication: item 13), the full peer chain
 * (grpc-js keeps only the leaf), connections cut when the client's SVID expires, and, on every
 * identity change, a new context for new handshakes plus re-verification of live connections so a
 * retired anchor cannot keep one open. ALPN offers only h2: gRPC needs nothing else.
 *
 * grpc-js disables socket timeouts on what it is given, so every stage before it is bounded here:
 * the handshake (`handshakeTimeoutMs`), the wait for the client's first bytes
 * (`prefaceTimeoutMs`: a client that handshakes and then says nothing is not grpc-js's problem
 * yet) and the number of sockets (`maxConnections`, drops logged at most every 10 s). Chains are
 * kept per connection, never per leaf: two connections with one leaf may present different
 * intermediates, and each call must be judged by the chain of its own connection.
 */
export async function startGrpcTlsListener(opts: GrpcTlsListenerOptions): Promise<GrpcTlsListener> {
  const { identity, listen, inject, limits, log } = opts;
  const now = opts.now ?? (() => new Date());
  const connections = new Map<TLSSocket, Connection>();
  const byPeer = new Map<string, { chain: Buffer[]; fingerprint: string }>();
  // Every TCP socket, handshaken or not, so close() never waits on a stalled handshake.
  const rawSockets = new Set<Socket>();

  const server = createServer({
    ...secureContextOptions(identity.serverTls(), { withClientCa: true }),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
    handshakeTimeout: limits.handshakeTimeoutMs,
  });
  capConnections(server, limits.maxConnections, log, "grpc-connections-dropped");

  /**
   * Until when the chain names a party this WFM knows (a client or an operator): the end of its
   * verified path, so an intermediate expiring before the leaf bounds the connection. undefined
   * when it names nobody.
   */
  const trustedUntil = (chain: Buffer[]): Date | undefined => {
    const checks = [
      () => identity.verifyClient(chain, now()).notAfter,
      () => identity.verifyOperator(chain, now()).notAfter,
    ];
    for (const verify of checks) {
      try {
        return verify();
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err;
      }
    }
    return undefined;
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
    const key = peerKey(socket);
    if (key === undefined) {
      socket.destroy();
      return;
    }
    const fingerprint = createHash("sha256").update(leaf).digest("hex");
    // Whether this SVID may call anything is judged per call (with a problem body the client can
    // read); here only the lifetime of its path (or, naming nobody, of its leaf) bounds the
    // connection.
    const until =
      trustedUntil(chain)?.getTime() ?? Date.parse(socket.getPeerCertificate().valid_to);
    const left = Number.isNaN(until) ? 0 : until - now().getTime();
    const timer = setTimeout(
      () => socket.destroy(),
      Math.min(Math.max(0, left) + SOCKET_GRACE_MS, MAX_TIMER_MS),
    );
    timer.unref();
    connections.set(socket, { chain, timer });
    byPeer.set(key, { chain, fingerprint });
    const preface = setTimeout(() => socket.destroy(), limits.prefaceTimeoutMs);
    preface.unref();
    socket.once("close", () => {
      clearTimeout(timer);
      clearTimeout(preface);
      connections.delete(socket);
      byPeer.delete(key);
    });
    // Node only reports socket errors to a listener; the session above us logs nothing useful.
    socket.on("error", () => undefined);
    // grpc-js gets the socket only once the client speaks: the first chunk goes back on the
    // stream, where Node's h2 session reads buffered bytes before its own.
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(preface);
      socket.pause();
      socket.unshift(chunk);
      inject(socket);
    });
  });
  // With a listener here Node leaves the socket open (a handshake timeout included): close it.
  server.on("tlsClientError", (_err, socket) => socket.destroy());

  const unsubscribe = identity.onChange(() => {
    server.setSecureContext(secureContextOptions(identity.serverTls(), { withClientCa: true }));
    for (const [socket, c] of connections) {
      if (trustedUntil(c.chain) === undefined) cutAfterGrace(socket);
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
    chains: (peer, leafFingerprint) => {
      const entry = byPeer.get(peer);
      // The same address with another leaf is a different (later) connection: not this call's.
      return entry?.fingerprint === leafFingerprint ? entry.chain : undefined;
    },
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
