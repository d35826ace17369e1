import { randomBytes, type X509Certificate } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { encodeAnchorsBundle } from "@margo/proto/identity";
import { MANIFEST_MEDIA_TYPE, PROBLEM_MEDIA_TYPE } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type {
  Fault,
  InstrumentedWfm,
  PublishedManifest,
  ReceivedStatus,
  RecordedRequest,
  ServedDeployment,
  ServerIdentity,
} from "../context.js";
import { type BuiltManifest, buildManifest, sha256Digest } from "./manifest.js";
import { createHarnessPki, type HarnessPki } from "./pki.js";

/**
 * The device suite's WFM: real HTTPS with mutual TLS on loopback, serving exactly the rc.3 wire
 * (manifest, YAML and bundle by digest, status, capabilities) plus a server-TLS-only SPIFFE bundle
 * endpoint, with a switch for every way a WFM can lie or misbehave. It records every request the
 * device makes (and every failed handshake) so checks judge the device by what it did on the wire.
 */

export interface InstrumentedWfmOptions {
  trustDomain: string;
  wfmId: string;
}

/** The instrumented WFM plus what only its owner (the suite) may do. */
export interface RunningInstrumentedWfm extends InstrumentedWfm {
  close(): Promise<void>;
}

/** The path of the SPIFFE bundle document on the bundle port. */
export const BUNDLE_PATH = "/.well-known/spiffe/bundle.json";

/** Refresh hint of the default bundle: long, so checks that do not care see no bundle traffic. */
const DEFAULT_REFRESH_HINT_S = 300;

const TLS_DEFAULT: Pick<SecureContextOptions, "minVersion" | "maxVersion"> = {
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.3",
};

interface Scope {
  clientId: string;
  clientSpiffeId: string;
  chainPem: string;
  keyPem: string;
}

/** A waitFor that ran out of time: a finding (the device did not do it), reported through t.fail. */
export async function pollUntil<T>(
  t: CheckTools,
  what: string,
  pred: () => T | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v !== undefined && v !== false) return v;
    if (t.signal.aborted) throw t.signal.reason ?? new Error("aborted");
    if (Date.now() >= deadline) t.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startInstrumentedWfm(
  opts: InstrumentedWfmOptions,
): Promise<RunningInstrumentedWfm> {
  const pki: HarnessPki = await createHarnessPki(opts.trustDomain, opts.wfmId);
  const trustedBundle = (seq: bigint, hint = DEFAULT_REFRESH_HINT_S) =>
    encodeAnchorsBundle([pki.root.certDer], { sequence: seq, refreshHintSeconds: hint }).toString(
      "utf8",
    );

  let scopeCounter = 0;
  const newScope = async (): Promise<Scope> => {
    scopeCounter++;
    const clientId = `conf-${scopeCounter}-${randomBytes(3).toString("hex")}`;
    const c = await pki.mintClient(clientId);
    return { clientId, clientSpiffeId: c.spiffeId, chainPem: c.chainPem, keyPem: c.keyPem };
  };

  let scope = await newScope();
  let seq = 0;
  let recorded: RecordedRequest[] = [];
  let statuses: ReceivedStatus[] = [];
  let caps: Array<{ seq: number; at: number; deviceId: string; body: Record<string, unknown> }> =
    [];
  let tlsFailures: Array<{ at: number; server: "management" | "bundle"; message: string }> = [];
  let faults: Fault[] = [];
  const seenStatus = new Set<string>();
  const seenCaps = new Set<string>();
  let highest = 1n;
  let current: BuiltManifest = buildManifest(1n, [], []);
  let bundleDoc = trustedBundle(1n);
  let bundleCache = "no-store";

  const contextFor = (kind: ServerIdentity, maxTls?: "TLSv1.1" | "TLSv1.2" | "TLSv1.3") => {
    const id = pki.server[kind];
    const tls: SecureContextOptions =
      maxTls === "TLSv1.1"
        ? // OpenSSL 3 refuses TLS 1.0/1.1 at the default security level; level 0 lets us offer it.
          { minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" }
        : { ...TLS_DEFAULT, ...(maxTls ? { maxVersion: maxTls } : {}) };
    return { cert: id.certPem, key: id.keyPem, ...tls };
  };

  const management = createServer({
    ...contextFor("good"),
    ca: pki.root.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  });

  const sockets = new Set<Socket>();
  const tlsSockets = new Set<TLSSocket>();
  /** Requests per TLS connection, and whether the WFM cut it (then a silent close is ours). */
  const usage = new WeakMap<Socket, { requests: number; cut: boolean }>();
  const track = (server: Server, name: "management" | "bundle") => {
    server.on("connection", (s: Socket) => {
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
    });
    server.on("secureConnection", (s: TLSSocket) => {
      const u = { requests: 0, cut: false };
      usage.set(s, u);
      tlsSockets.add(s);
      s.once("close", () => {
        tlsSockets.delete(s);
        if (u.requests === 0 && !u.cut) {
          tlsFailures.push({
            at: Date.now(),
            server: name,
            message: "handshake completed, then the client closed without a request",
          });
        }
      });
    });
    server.on("request", (req: IncomingMessage) => {
      const u = usage.get(req.socket);
      if (u) u.requests++;
    });
    server.on("tlsClientError", (err: Error) => {
      tlsFailures.push({ at: Date.now(), server: name, message: err.message });
    });
  };
  track(management, "management");

  /** `ec P-256`, `rsa 3072`, ... of a leaf (item 11 judges the curve and the RSA size). */
  const keyOf = (cert: X509Certificate | undefined): string | undefined => {
    const key = cert?.publicKey;
    if (!key) return undefined;
    const d = key.asymmetricKeyDetails ?? {};
    const curve = d.namedCurve === "prime256v1" ? "P-256" : d.namedCurve;
    return [
      key.asymmetricKeyType ?? "unknown",
      curve ?? (d.modulusLength ? String(d.modulusLength) : undefined),
    ]
      .filter(Boolean)
      .join(" ");
  };

  const peerSpiffeId = (req: IncomingMessage): string | undefined => {
    const san = (req.socket as TLSSocket).getPeerX509Certificate?.()?.subjectAltName ?? "";
    return /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
  };
  const chainLength = (req: IncomingMessage): number => {
    const sock = req.socket as TLSSocket;
    let c = sock.getPeerCertificate?.(true);
    if (!c || Object.keys(c).length === 0) return 0;
    const seen = new Set<string>();
    let n = 0;
    while (c && !seen.has(c.fingerprint256)) {
      seen.add(c.fingerprint256);
      n++;
      c = c.issuerCertificate;
    }
    return n;
  };

  /** TLS facts read when the request arrives: once the answer ends the socket may be gone. */
  const tlsFacts = (req: IncomingMessage) => {
    const sock = req.socket as TLSSocket;
    // The chain first: it is read from the same peer certificate the keys are.
    const clientChainLength = chainLength(req);
    const client = keyOf(sock.getPeerX509Certificate?.());
    const server = keyOf(sock.getX509Certificate?.());
    return {
      tlsProtocol: sock.getProtocol?.() ?? null,
      clientChainLength,
      tlsKeys: { ...(client ? { client } : {}), ...(server ? { server } : {}) },
    };
  };
  const record = (
    req: IncomingMessage,
    body: Buffer,
    status: number,
    path: string,
    tls: ReturnType<typeof tlsFacts>,
  ) => {
    const r: RecordedRequest = {
      seq: ++seq,
      at: Date.now(),
      method: req.method ?? "",
      path,
      headers: { ...req.headers },
      body,
      status,
      ...tls,
    };
    recorded.push(r);
    return r;
  };

  const problem = (
    res: ServerResponse,
    status: number,
    type: string,
    title: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "content-type": PROBLEM_MEDIA_TYPE, ...headers });
    res.end(JSON.stringify({ type, title, status, ...extra }));
    return status;
  };

  const takeHttpFault = (method: string, path: string) => {
    for (const f of faults) {
      if (f.kind !== "http-status") continue;
      if (!path.startsWith(f.pathPrefix)) continue;
      if (f.method && f.method.toUpperCase() !== method) continue;
      if (f.times !== undefined) {
        if (f.times <= 0) continue;
        f.times--;
      }
      return f;
    }
    return undefined;
  };

  const artifact404 = (deploymentId: string | undefined) =>
    faults.some(
      (f) =>
        f.kind === "artifact-404" &&
        (f.deploymentId === undefined ||
          deploymentId === undefined ||
          f.deploymentId === deploymentId),
    );

  const route = (req: IncomingMessage, res: ServerResponse, body: Buffer, path: string): number => {
    const method = req.method ?? "GET";
    const hf = takeHttpFault(method, path);
    if (hf) {
      return problem(
        res,
        hf.status,
        "about:blank",
        hf.status === 429 ? "Too Many Requests" : "Service Unavailable",
        {
          retryable: true,
          retryAfterSeconds: hf.retryAfterSeconds,
          backoffStrategy: "fixed",
        },
        { "retry-after": String(hf.retryAfterSeconds) },
      );
    }
    if (path === "/api/v1/deployments") {
      if (method !== "GET") return problem(res, 405, "about:blank", "Method Not Allowed");
      const accept = req.headers.accept;
      if (accept !== undefined && !acceptsManifest(accept)) {
        return problem(res, 406, margoType("server-cannot-generate-response"), "Not Acceptable");
      }
      const m = current.published;
      if (req.headers["if-none-match"] === m.etag) {
        res.writeHead(304, { etag: m.etag, "cache-control": "private" });
        res.end();
        return 304;
      }
      res.writeHead(200, {
        "content-type": MANIFEST_MEDIA_TYPE,
        etag: m.etag,
        "cache-control": "private",
      });
      res.end(m.body);
      return 200;
    }
    const art = current.artifacts.get(path);
    if (art && method === "GET") {
      if (artifact404(art.deploymentId)) {
        return problem(
          res,
          404,
          art.kind === "bundle" ? margoType("invalid-bundle") : margoType("deployment-not-found"),
          "Not Found",
        );
      }
      res.writeHead(200, {
        "content-type": art.contentType,
        etag: `"${art.digest}"`,
        "cache-control": "private, max-age=31536000, immutable",
      });
      res.end(art.bytes);
      return 200;
    }
    const st = /^\/api\/v1\/deployments\/([^/]+)\/status$/.exec(path);
    if (st?.[1]) {
      if (method !== "POST") return problem(res, 405, "about:blank", "Method Not Allowed");
      const id = safeDecode(st[1]);
      const parsed = parseObject(body);
      if (!parsed)
        return problem(res, 400, margoType("invalid-request"), "body is not a JSON object");
      statuses.push({ seq: seq + 1, at: Date.now(), deploymentId: id, body: parsed, raw: body });
      const first = !seenStatus.has(id);
      seenStatus.add(id);
      res.writeHead(first ? 201 : 200);
      res.end();
      return first ? 201 : 200;
    }
    const cap = /^\/api\/v1\/capabilities\/(.+)$/.exec(path);
    if (cap?.[1]) {
      const deviceId = safeDecode(cap[1]);
      if (method === "DELETE") {
        seenCaps.delete(deviceId);
        res.writeHead(204);
        res.end();
        return 204;
      }
      if (method !== "PUT") return problem(res, 405, "about:blank", "Method Not Allowed");
      const parsed = parseObject(body);
      if (!parsed)
        return problem(res, 400, margoType("invalid-request"), "body is not a JSON object");
      caps.push({ seq: seq + 1, at: Date.now(), deviceId, body: parsed });
      const first = !seenCaps.has(deviceId);
      seenCaps.add(deviceId);
      res.writeHead(first ? 201 : 200);
      res.end();
      return first ? 201 : 200;
    }
    if (/^\/api\/v1\/(deployments\/[^/]+\/[^/]+|bundles\/[^/]+)$/.test(path)) {
      return problem(
        res,
        404,
        path.startsWith("/api/v1/bundles/")
          ? margoType("invalid-bundle")
          : margoType("deployment-not-found"),
        "Not Found",
      );
    }
    return problem(res, 404, "about:blank", "Not Found");
  };

  management.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const tls = tlsFacts(req);
    void readBody(req).then(
      (body) => {
        const path = (req.url ?? "/").split("?")[0] ?? "/";
        // An earlier scope's identity (a device not yet reconfigured) must not pollute the records.
        if (peerSpiffeId(req) !== scope.clientSpiffeId) {
          problem(res, 403, margoType("not-authorized"), "not the current client of this WFM");
          return;
        }
        let status = 500;
        try {
          status = route(req, res, body, path);
        } catch (e) {
          status = problem(res, 500, "about:blank", `harness error: ${(e as Error).message}`);
        }
        // Recorded after answering so `status` is what the device actually got.
        // Synchronous after route(), so statuses/capabilities recorded there as seq + 1 match.
        record(req, body, status, path, tls);
      },
      () => res.destroy(),
    );
  });

  const onBundleRequest = (req: IncomingMessage, res: ServerResponse) => {
    const tls = tlsFacts(req);
    void readBody(req).then((body) => {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      let status: number;
      if (req.method === "GET" && path === BUNDLE_PATH) {
        const etag = `"${sha256Digest(Buffer.from(bundleDoc))}"`;
        const headers = { etag, "cache-control": bundleCache };
        if (req.headers["if-none-match"] === etag) {
          res.writeHead(304, headers);
          res.end();
          status = 304;
        } else {
          res.writeHead(200, { "content-type": "application/json", ...headers });
          res.end(bundleDoc);
          status = 200;
        }
      } else {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found");
        status = 404;
      }
      record(req, body, status, path, tls);
    });
  };

  /**
   * A bundle endpoint on a fresh port per client scope: a refresher the device left running from
   * an earlier Configure then hits a closed port instead of showing up in the next check's records.
   */
  const openBundleServer = async (kind: ServerIdentity) => {
    const server = createServer({ ...contextFor(kind) });
    track(server, "bundle");
    server.on("request", onBundleRequest);
    const port = await listen(server);
    return { server, url: `https://127.0.0.1:${port}${BUNDLE_PATH}` };
  };

  const mPort = await listen(management);
  let bundle = await openBundleServer("good");

  const cutConnections = () => {
    for (const s of tlsSockets) {
      const u = usage.get(s);
      if (u) u.cut = true;
      s.destroy();
    }
    for (const s of sockets) s.destroy();
  };

  const wfm: RunningInstrumentedWfm = {
    url: `https://127.0.0.1:${mPort}`,
    get bundleUrl() {
      return bundle.url;
    },
    trustDomain: opts.trustDomain,
    spiffeId: pki.wfmSpiffeId,
    clientCredentials: () => ({
      chainPem: scope.chainPem,
      keyPem: scope.keyPem,
      anchorsPem: pki.root.certPem,
      bundleJson: trustedBundle(1n),
      clientId: scope.clientId,
    }),
    publish(deployments: ServedDeployment[]): PublishedManifest {
      const forced = faults.find((f) => f.kind === "manifest-version");
      const version = forced?.kind === "manifest-version" ? forced.version : highest + 1n;
      if (version > highest) highest = version;
      current = buildManifest(version, deployments, faults);
      return current.published;
    },
    inject(fault) {
      faults.push({ ...fault });
    },
    clearFaults() {
      faults = [];
    },
    async presentIdentity(kind, o) {
      const ctx = contextFor(kind, o?.maxTlsVersion);
      management.setSecureContext({ ...ctx, ca: pki.root.certPem });
      bundle.server.setSecureContext(ctx);
      // Keep-alive connections would go on with the old handshake.
      cutConnections();
    },
    trustAnchorDer: (which) => (which === "trusted" ? pki.root.certDer : pki.otherRoot.certDer),
    tlsFailures: () => [...tlsFailures],
    serveBundle(doc, o) {
      bundleDoc = doc;
      bundleCache = o?.cacheControl ?? "no-store";
    },
    requests: () => [...recorded],
    statuses: () => [...statuses],
    capabilities: () => [...caps],
    waitFor: pollUntil,
    async reset() {
      scope = await newScope();
      recorded = [];
      statuses = [];
      caps = [];
      tlsFailures = [];
      faults = [];
      seenStatus.clear();
      seenCaps.clear();
      highest = 1n;
      current = buildManifest(1n, [], []);
      bundleDoc = trustedBundle(1n);
      bundleCache = "no-store";
      const old = bundle.server;
      bundle = await openBundleServer("good");
      old.close();
      await wfm.presentIdentity("good");
    },
    async close() {
      cutConnections();
      await Promise.all(
        [management, bundle.server].map((s) => new Promise<void>((r) => s.close(() => r()))),
      );
    },
  };
  return wfm;
}

/** Registered Margo problem types live under one namespace (problem-types registry, digest 9). */
const PROBLEM_NAMESPACE = "https://docs.margo.org/specification/problem-types";
const margoType = (name: string) => `${PROBLEM_NAMESPACE}#${name}`;

function acceptsManifest(accept: string): boolean {
  return accept
    .split(",")
    .map((p) => (p.split(";")[0] ?? "").trim().toLowerCase())
    .some((t) => t === MANIFEST_MEDIA_TYPE || t === "*/*" || t === "application/*" || t === "");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString("utf8"));
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}
