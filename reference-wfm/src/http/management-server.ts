import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { gzipSync } from "node:zlib";
import { BUNDLE_MEDIA_TYPE, DEPLOYMENT_MEDIA_TYPE, MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import type { WfmConfig } from "../config.js";
import type { Southbound } from "../core/api.js";
import { checkDeviceIdPolicy } from "../core/device-id.js";
import { WfmError } from "../core/errors.js";
import { IdentityError, type VerifiedClient, type WfmIdentity } from "../identity/types.js";
import { mutant } from "../mutants.js";
import {
  BodyAbortedError,
  BodyIdleError,
  BodyTooLargeError,
  BodyTooSlowError,
  declaredTooLarge,
  isJsonContentType,
  readBody,
  unsupportedBodyEncoding,
} from "./body.js";
import { capConnections, connectionLimitOptions } from "./connection-limits.js";
import { type EdgeLog, stderrLog } from "./log.js";
import { accepts, acceptsGzip, ifNoneMatchHits } from "./negotiation.js";
import {
  PROBLEM_SHAPES,
  type ProblemResponse,
  problemFromError,
  problemResponse,
} from "./problem.js";
import { RateLimiter } from "./rate-limit.js";
import { type Operation, route } from "./routes.js";
import { secureContextOptions } from "./tls-options.js";

/** Content-addressed responses never change, so caches may keep them for a year (item 47). */
const IMMUTABLE = "private, max-age=31536000, immutable";

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Most recent gzip encodings kept (YAML only; bundles are gzip already). */
const GZIP_CACHE_ENTRIES = 256;

export interface ManagementServerOptions {
  core: Southbound;
  identity: WfmIdentity;
  /**
   * `managementLimits` bounds every stage of a connection; a bounded connection age keeps a
   * rotated-out anchor from lingering even though policy is re-read per request (item 13).
   */
  config: Pick<WfmConfig, "management" | "maxBodyBytes" | "rateLimit" | "managementLimits">;
  log?: EdgeLog;
  /** Test hook for SVID-expiry checks; defaults to the wall clock. */
  now?: () => Date;
  /**
   * Idle keep-alive timeout. Node's 5 s default is shorter than a typical 15 s poll period, so
   * every poll then pays a full mTLS handshake; raising it trades idle sockets for handshakes.
   * Policy and SVID validity are re-checked per request either way (item 13).
   */
  keepAliveTimeoutMs?: number;
  /**
   * A limiter shared with the gRPC edge, so a client has one budget across both bindings;
   * without it the edge builds its own from `config.rateLimit`.
   */
  rateLimiter?: RateLimiter;
}

export interface RunningManagementServer {
  port: number;
  /** Live authenticated connections (tests check that refused ones never count). */
  connectionCount(): number;
  close(): Promise<void>;
}

interface Connection {
  client: VerifiedClient;
  chain: Buffer[];
  timer: NodeJS.Timeout;
}

/**
 * The DER chain a client presented, leaf first, as Node built it from the handshake. The
 * self-issued anchor at the end is dropped: verification chains to the bundle's copy of it.
 */
export function peerChainDer(socket: TLSSocket): Buffer[] {
  const leaf = socket.getPeerCertificate(true) as PeerCertificate & {
    issuerCertificate?: PeerCertificate;
  };
  const out: Buffer[] = [];
  if (!leaf?.raw) return out;
  const seen = new Set<string>();
  let cur: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = leaf;
  while (cur?.raw && !seen.has(cur.fingerprint256)) {
    seen.add(cur.fingerprint256);
    const issuer = cur.issuerCertificate as typeof cur;
    const selfIssued = !issuer || issuer === cur || issuer.fingerprint256 === cur.fingerprint256;
    if (selfIssued && out.length > 0) break;
    out.push(cur.raw);
    cur = issuer;
  }
  return out;
}

/**
 * The Management Interface (digest 4): HTTP/1.1 over mutual TLS with WFM-minted SVIDs. A
 * connection whose client SVID fails any SPIFFE check is destroyed before HTTP sees a byte
 * (items 3, 6, 9, 10); identity comes only from that certificate (items 4, 14); policy and rate
 * limits are checked on every request (items 7, 13, 85).
 */
export async function startManagementServer(
  opts: ManagementServerOptions,
): Promise<RunningManagementServer> {
  const { core, identity, config } = opts;
  const log = opts.log ?? stderrLog;
  const now = opts.now ?? (() => new Date());
  const limiter =
    opts.rateLimiter ?? new RateLimiter(config.rateLimit.requestsPerSecond, config.rateLimit.burst);
  const connections = new Map<TLSSocket, Connection>();
  const gzipCache = new Map<string, Buffer>();
  // Every TCP socket, handshaken or not, so close() never waits on a stalled handshake.
  const rawSockets = new Set<Socket>();

  const limits = config.managementLimits;
  const server: Server = createServer({
    ...secureContextOptions(identity.serverTls(), { withClientCa: true }),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["http/1.1"],
    ...connectionLimitOptions(limits, config.maxBodyBytes),
  });
  capConnections(server, limits.maxConnections, log, "connections-dropped");

  const admit = (socket: TLSSocket, chain: Buffer[], client: VerifiedClient) => {
    const ageLimit = Math.min(
      client.notAfter.getTime() - now().getTime(),
      limits.maxConnectionAgeMs,
      MAX_TIMER_MS,
    );
    const timer = setTimeout(() => socket.destroy(), Math.max(0, ageLimit));
    timer.unref();
    const previous = connections.get(socket);
    if (previous) clearTimeout(previous.timer);
    connections.set(socket, { client, chain, timer });
  };

  const verify = (socket: TLSSocket, chain: Buffer[]): VerifiedClient | undefined => {
    try {
      return identity.verifyClient(chain, now());
    } catch (err) {
      const rule = err instanceof IdentityError ? err.rule : "internal";
      log("client-certificate-refused", {
        rule,
        message: err instanceof Error ? err.message : String(err),
        remote: socket.remoteAddress,
      });
      socket.destroy();
      return undefined;
    }
  };

  server.on("connection", (s: Socket) => {
    rawSockets.add(s);
    s.once("close", () => rawSockets.delete(s));
  });

  // Prepended so the SPIFFE check runs before the HTTP machinery reads the request.
  server.prependListener("secureConnection", (socket: TLSSocket) => {
    const chain = peerChainDer(socket);
    const client = verify(socket, chain);
    if (!client) return;
    admit(socket, chain, client);
    socket.once("close", () => {
      const c = connections.get(socket);
      if (c) clearTimeout(c.timer);
      connections.delete(socket);
    });
  });
  server.on("tlsClientError", (err, socket) => {
    log("tls-handshake-failed", { message: err.message, remote: socket.remoteAddress });
  });

  // Rotation without restart: new connections get the new SVID and anchors; live ones are
  // re-verified so a retired anchor cannot keep a keep-alive connection open.
  const unsubscribe = identity.onChange(() => {
    server.setSecureContext(secureContextOptions(identity.serverTls(), { withClientCa: true }));
    for (const [socket, c] of connections) {
      const client = verify(socket, c.chain);
      if (client) admit(socket, c.chain, client);
    }
  });

  const send = (
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body?: Buffer,
  ) => {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) h["content-length"] = String(body.length);
    else if (status !== 204 && status !== 304) h["content-length"] = "0";
    res.writeHead(status, h);
    res.end(body);
  };
  const sendProblem = (res: ServerResponse, p: ProblemResponse, closeAfter = false) => {
    send(res, p.status, closeAfter ? { ...p.headers, connection: "close" } : p.headers, p.body);
  };

  const gzipOf = (digest: string, bytes: Buffer): Buffer => {
    let z = gzipCache.get(digest);
    if (!z) {
      z = gzipSync(bytes);
      if (gzipCache.size >= GZIP_CACHE_ENTRIES) {
        const first = gzipCache.keys().next().value;
        if (first !== undefined) gzipCache.delete(first);
      }
      gzipCache.set(digest, z);
    }
    return z;
  };

  /** 200/304 for a digest-addressed GET; existence is checked first so a foreign digest never 304s. */
  const sendImmutable = (
    req: IncomingMessage,
    res: ServerResponse,
    digest: string,
    bytes: Buffer,
    contentType: string,
    compressible: boolean,
  ) => {
    const etag = `"${digest}"`;
    const headers: Record<string, string> = {
      etag,
      "cache-control": mutant("yaml-not-immutable") ? "private" : IMMUTABLE,
      vary: "Accept-Encoding",
    };
    if (ifNoneMatchHits(req.headers["if-none-match"], etag)) {
      send(res, 304, headers);
      return;
    }
    headers["content-type"] = contentType;
    if (compressible && acceptsGzip(req.headers["accept-encoding"])) {
      headers["content-encoding"] = "gzip";
      send(res, 200, headers, gzipOf(digest, bytes));
      return;
    }
    send(res, 200, headers, bytes);
  };

  const readJsonBody = async (
    req: IncomingMessage,
    res: ServerResponse,
    instance: string,
  ): Promise<Buffer | undefined> => {
    if (declaredTooLarge(req, config.maxBodyBytes)) {
      sendProblem(res, tooLarge(instance, config.maxBodyBytes), true);
      return undefined;
    }
    if (!isJsonContentType(req.headers["content-type"])) {
      // rc.3 lists 400 (not 415) for PUT/POST: a body of the wrong media type is a malformed request.
      sendProblem(
        res,
        problemFromError(
          new WfmError("invalid-request", "Content-Type must be application/json"),
          instance,
        ),
        true,
      );
      return undefined;
    }
    const unsupported = unsupportedBodyEncoding(
      req.headers["content-type"],
      req.headers["content-encoding"],
    );
    if (unsupported !== undefined) {
      // rc.3 lists 400 (not 415) for PUT/POST: bytes we cannot read as UTF-8 JSON are malformed.
      sendProblem(
        res,
        problemFromError(new WfmError("invalid-request", unsupported), instance),
        true,
      );
      return undefined;
    }
    try {
      return await readBody(req, config.maxBodyBytes, {
        idleMs: limits.bodyIdleTimeoutMs,
        graceMs: limits.bodyGraceMs,
        minBytesPerSecond: limits.minBodyBytesPerSecond,
      });
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        sendProblem(res, tooLarge(instance, config.maxBodyBytes), true);
        return undefined;
      }
      if (err instanceof BodyIdleError || err instanceof BodyTooSlowError) {
        sendProblem(res, problemResponse({ status: 408, detail: err.message, instance }), true);
        return undefined;
      }
      if (err instanceof BodyAbortedError) {
        req.socket.destroy();
        return undefined;
      }
      throw err;
    }
  };

  const dispatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    clientId: string,
    op: Operation,
    instance: string,
  ) => {
    if (op.op === "putCapabilities" || op.op === "deleteCapabilities") {
      // Local policy (digest 4.1 lets a WFM restrict deviceIds): no dot segments, bounded length.
      const why = checkDeviceIdPolicy(op.deviceId);
      if (why !== undefined) {
        // rc.3 lists only 204/403/404 for DELETE; no device can exist under a refused id, so
        // 404 is the faithful answer there. A PUT carries the id as data, so 422 names it.
        if (op.op === "deleteCapabilities") {
          throw new WfmError("device-not-found", `no device ${op.deviceId}: ${why}`);
        }
        throw new WfmError("semantic-error", why, [{ field: "deviceId", message: why }]);
      }
    }
    switch (op.op) {
      case "getManifest": {
        if (!accepts(req.headers.accept, MANIFEST_MEDIA_TYPE)) {
          throw new WfmError(
            "server-cannot-generate-response",
            `Accept lists no type this server produces; it serves ${MANIFEST_MEDIA_TYPE}`,
          );
        }
        const snap = await core.manifest(clientId);
        // The manifest changes: private and always revalidated, never immutable (item 41).
        const headers: Record<string, string> = { etag: snap.etag, "cache-control": "private" };
        if (ifNoneMatchHits(req.headers["if-none-match"], snap.etag)) {
          send(res, 304, headers);
          return;
        }
        headers["content-type"] = MANIFEST_MEDIA_TYPE;
        send(res, 200, headers, snap.body);
        return;
      }
      case "getDeploymentYaml": {
        const yaml = await core.deploymentYaml(clientId, op.deploymentId, op.digest);
        sendImmutable(req, res, op.digest, yaml, DEPLOYMENT_MEDIA_TYPE, true);
        return;
      }
      case "getBundle": {
        const bundle = await core.bundle(clientId, op.digest);
        sendImmutable(req, res, op.digest, bundle, BUNDLE_MEDIA_TYPE, false);
        return;
      }
      case "putCapabilities": {
        const body = await readJsonBody(req, res, instance);
        if (!body) return;
        const { created } = await core.putCapabilities(clientId, op.deviceId, body);
        send(res, created ? 201 : 200, {});
        return;
      }
      case "deleteCapabilities": {
        await core.deleteCapabilities(clientId, op.deviceId);
        send(res, 204, {});
        return;
      }
      case "reportStatus": {
        const body = await readJsonBody(req, res, instance);
        if (!body) return;
        const { created } = await core.reportStatus(clientId, op.deploymentId, body);
        send(res, created || mutant("status-update-201") ? 201 : 200, {});
        return;
      }
    }
  };

  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    const conn = connections.get(socket);
    // Never expected (the secureConnection check runs first), but fail closed.
    if (!conn || now().getTime() >= conn.client.notAfter.getTime()) {
      socket.destroy();
      return;
    }
    // Identity is the certificate and nothing else (items 4, 14): forwarded-certificate headers
    // from outside our trust boundary are dropped unread.
    delete req.headers["client-cert"];
    delete req.headers["client-cert-chain"];
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const instance = q < 0 ? target : target.slice(0, q);
    const clientId = conn.client.clientId;
    const hasBody = req.method === "PUT" || req.method === "POST";

    const handle = async () => {
      // The bucket is charged first so a refused client cannot hammer us with free 403s.
      const wait = limiter.take(clientId);
      if (wait > 0) {
        throw new WfmError("rate-limited", "too many requests from this client", [], wait);
      }
      if (!core.isAccepted(clientId) && !mutant("retired-client-accepted")) {
        throw new WfmError("not-authorized", `client ${clientId} is not accepted by this WFM`);
      }
      const r = route(req.method ?? "", target);
      if ("op" in r) {
        await dispatch(req, res, clientId, r, instance);
        return;
      }
      if (r.miss === "method-not-allowed") {
        sendProblem(
          res,
          problemResponse({
            status: 405,
            detail: `${req.method} is not allowed here; allowed: ${r.allow.join(", ")}`,
            instance,
            headers: { allow: r.allow.join(", ") },
          }),
          hasBody,
        );
        return;
      }
      if (r.miss === "bad-digest") {
        throw new WfmError(r.kind, "the path names no sha256 digest this client can fetch");
      }
      throw new WfmError("not-found", "no such resource");
    };

    handle().catch((err: unknown) => {
      if (!(err instanceof WfmError) || err.kind === "internal") {
        log("request-failed", {
          method: req.method,
          path: instance,
          clientId,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        });
      }
      if (res.headersSent) {
        socket.destroy();
        return;
      }
      try {
        // A body we never read must not be parsed as the next request.
        sendProblem(res, problemFromError(err, instance), hasBody && !req.readableEnded);
      } catch (sendErr) {
        log("response-failed", { path: instance, error: String(sendErr) });
        socket.destroy();
      }
    });
  };
  server.on("request", onRequest);
  // Expect: 100-continue: an oversized body is refused before the client is invited to send it;
  // everything else is invited and handled as usual.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (!declaredTooLarge(req, config.maxBodyBytes)) res.writeContinue();
    onRequest(req, res);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.management.port, config.management.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    connectionCount: () => connections.size,
    close: async () => {
      unsubscribe();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [socket, c] of connections) {
        clearTimeout(c.timer);
        socket.destroy();
      }
      for (const s of rawSockets) s.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}

function tooLarge(instance: string, limit: number): ProblemResponse {
  const shape = PROBLEM_SHAPES["payload-too-large"];
  return problemResponse({
    status: shape.status,
    type: shape.type,
    title: shape.title,
    detail: `request body exceeds ${limit} bytes`,
    instance,
  });
}
