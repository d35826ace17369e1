import { X509Certificate } from "node:crypto";
import { connect as h2connect } from "node:http2";
import { type Socket, connect as tcpConnect } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { type Client, status } from "@grpc/grpc-js";
import { api } from "@margo/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GrpcLimits } from "../src/config.js";
import { CallerRefusedError, CallerVerifier } from "../src/grpc/peer.js";
import { startGrpcServer } from "../src/grpc/server.js";
import type { GrpcServerOptions, RunningGrpcServer } from "../src/grpc/server-contract.js";
import {
  type Ca,
  call,
  channelCredentials,
  MemoryCore,
  mintLeaf,
  newIntermediate,
  problemOfError,
  TEST_CHANNEL_OPTIONS,
  type TestCredentials,
  TestIdentity,
} from "./grpc-support.js";

/**
 * Connection limits of the gRPC listener with short values, mirroring rest-limits.test.ts: every
 * stage before grpc-js (handshake, the h2 preface), idle connections and their number are bounded;
 * and a connection, a cached verdict and a chain belong to the certificates of their own connection.
 */

const HANDSHAKE_MS = 300;
const PREFACE_MS = 300;
const IDLE_MS = 400;
/** Timer scheduling and loopback teardown. */
const SLACK_MS = 700;
/** The listener's own SOCKET_GRACE_MS: how long a connection outlives the path that verified it. */
const GRACE_MS = 1000;

const INFO: GrpcServerOptions["info"] = {
  vendor: "margo-reference",
  product: "reference-wfm",
  version: "0.0.0",
  margoVersion: "1.0.0-rc.3",
  features: [],
};

const LONG: GrpcLimits = {
  maxConnections: 1000,
  handshakeTimeoutMs: 60_000,
  prefaceTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  maxConnectionAgeMs: 60 * 60 * 1000,
};

const servers: RunningGrpcServer[] = [];
const open: Client[] = [];
const logs: Array<{ event: string; fields: Record<string, unknown> }> = [];
let identity: TestIdentity;
let core: MemoryCore;
let creds: TestCredentials;

async function start(limits: Partial<GrpcLimits>): Promise<number> {
  const server = await startGrpcServer({
    core,
    identity,
    listen: { host: "127.0.0.1", port: 0 },
    info: INFO,
    limits: { ...LONG, ...limits },
    log: (event, fields) => logs.push({ event, fields }),
  });
  servers.push(server);
  return server.port;
}

beforeAll(async () => {
  identity = await TestIdentity.create();
  core = new MemoryCore();
  core.accepted.add("dev-a");
  creds = await identity.client("dev-a");
});
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A raw TLS connection offering h2 with `c`, past its handshake. */
function tlsTo(port: number, c: TestCredentials = creds): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port,
      ca: c.caPem,
      cert: c.certPem,
      key: c.keyPem,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** How long after `since` the socket closed. */
function closedAfter(s: Socket, since: number): Promise<number> {
  return new Promise((resolve) => {
    s.on("error", () => undefined);
    s.resume();
    s.once("close", () => resolve(Date.now() - since));
  });
}

/** A gRPC client on its own connection (no subchannel shared with another test client). */
function wm(port: number, c: TestCredentials): api.WorkloadManagementServiceClient {
  const client = new api.WorkloadManagementServiceClient(
    `127.0.0.1:${port}`,
    channelCredentials(c),
    { ...TEST_CHANNEL_OPTIONS, "grpc.use_local_subchannel_pool": 1 },
  );
  open.push(client);
  return client;
}

/** Milliseconds until `ca` expires (X.509 times have one-second resolution). */
function msUntilExpiry(ca: Ca): number {
  const cert = new X509Certificate(Buffer.from(ca.cert.rawData));
  return Date.parse(cert.validTo) - Date.now();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

describe("connection stage timeouts", () => {
  it("a TCP connection that never starts a handshake is closed after the handshake timeout", async () => {
    const port = await start({ handshakeTimeoutMs: HANDSHAKE_MS });
    const started = Date.now();
    const afterMs = await closedAfter(tcpConnect(port, "127.0.0.1"), started);
    expect(afterMs).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(afterMs).toBeLessThan(HANDSHAKE_MS + SLACK_MS);
  }, 5000);

  it("a client that completes TLS with ALPN h2 but never sends the h2 preface is closed after the preface timeout", async () => {
    const port = await start({ prefaceTimeoutMs: PREFACE_MS });
    const s = await tlsTo(port);
    expect(s.alpnProtocol).toBe("h2");
    const afterMs = await closedAfter(s, Date.now());
    expect(afterMs).toBeGreaterThanOrEqual(PREFACE_MS - 50);
    expect(afterMs).toBeLessThan(PREFACE_MS + SLACK_MS);
  }, 5000);

  it("a client that speaks in time is not cut by the preface timer and its calls work", async () => {
    const port = await start({ prefaceTimeoutMs: PREFACE_MS });
    const session = h2connect(`https://127.0.0.1:${port}`, {
      createConnection: () =>
        connect({
          host: "127.0.0.1",
          port,
          ca: creds.caPem,
          cert: creds.certPem,
          key: creds.keyPem,
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        }),
    });
    let closed = false;
    session.on("error", () => undefined);
    session.once("close", () => {
      closed = true;
    });
    await new Promise((r) => session.once("remoteSettings", r));
    await sleep(PREFACE_MS + SLACK_MS);
    expect(closed).toBe(false);
    session.close();
    const c = wm(port, creds);
    const res = await call(c, c.getManifest, {});
    expect(res.etag).toBe((await core.manifest("dev-a")).etag);
  }, 5000);

  it("an h2 connection with no call in flight is closed after the idle timeout", async () => {
    const port = await start({ idleTimeoutMs: IDLE_MS });
    const session = h2connect(`https://127.0.0.1:${port}`, {
      createConnection: () =>
        connect({
          host: "127.0.0.1",
          port,
          ca: creds.caPem,
          cert: creds.certPem,
          key: creds.keyPem,
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        }),
    });
    session.on("error", () => undefined);
    let goaway = false;
    session.once("goaway", () => {
      goaway = true;
    });
    await new Promise((r) => session.once("remoteSettings", r));
    const started = Date.now();
    const afterMs = await new Promise<number>((r) =>
      session.once("close", () => r(Date.now() - started)),
    );
    expect(goaway).toBe(true);
    expect(afterMs).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(afterMs).toBeLessThan(IDLE_MS + SLACK_MS);
  }, 5000);
});

describe("connection cap", () => {
  it("connections beyond maxConnections are dropped at accept, and the drops are logged at most once per interval", async () => {
    const port = await start({ maxConnections: 2 });
    logs.length = 0;
    const held = [await tlsTo(port), await tlsTo(port)];
    const drops = [tcpConnect(port, "127.0.0.1"), tcpConnect(port, "127.0.0.1")];
    const started = Date.now();
    const closedMs = await Promise.all(drops.map((s) => closedAfter(s, started)));
    // Dropped at once, long before any timeout of this server could have fired.
    for (const ms of closedMs) expect(ms).toBeLessThan(SLACK_MS);
    const dropLogs = logs.filter((l) => l.event === "grpc-connections-dropped");
    expect(dropLogs).toHaveLength(1);
    expect(dropLogs[0]?.fields.maxConnections).toBe(2);
    // The held ones are untouched: a closed one frees a place for a new client.
    expect(held.every((s) => !s.destroyed)).toBe(true);
    const freed = closedAfter(held[0] as TLSSocket, Date.now());
    held[0]?.destroy();
    await freed;
    await sleep(50);
    const c = wm(port, creds);
    expect((await call(c, c.getManifest, {})).etag).toBe((await core.manifest("dev-a")).etag);
    held[1]?.destroy();
  }, 5000);
});

describe("the verified path, not the leaf, bounds connections and verdicts", () => {
  /** A client SVID for dev-a valid for an hour, through an intermediate expiring in about two seconds. */
  async function shortPathCreds(): Promise<{ creds: TestCredentials; intermediate: Ca }> {
    const intermediate = await newIntermediate(identity.issuing, "short", { lifetimeMs: 2500 });
    const leaf = await mintLeaf(intermediate, `${identity.wfmSpiffeId}/client/dev-a`);
    return {
      intermediate,
      creds: {
        certPem: `${leaf.certPem}\n${intermediate.cert.toString("pem")}`,
        keyPem: leaf.keyPem,
        caPem: identity.anchorsPem,
      },
    };
  }

  it("item 13: a connection is cut when its intermediate expires, though the leaf lives an hour", async () => {
    const port = await start({});
    const { creds: shortCreds, intermediate } = await shortPathCreds();
    const s = await tlsTo(port, shortCreds);
    s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const left = msUntilExpiry(intermediate);
    const afterMs = await closedAfter(s, Date.now());
    expect(afterMs).toBeGreaterThanOrEqual(left - 100);
    expect(afterMs).toBeLessThan(left + GRACE_MS + SLACK_MS);
  }, 8000);

  it("a cached caller verdict ends when an intermediate on its path expires", async () => {
    const { creds: shortCreds, intermediate } = await shortPathCreds();
    const leafDer = Buffer.from(new X509Certificate(shortCreds.certPem).raw);
    const chain = [leafDer, Buffer.from(intermediate.cert.rawData)];
    const verifier = new CallerVerifier(identity, core, () => chain);
    const peer = {
      getPeer: () => "127.0.0.1:1",
      getAuthContext: () => ({
        sslPeerCertificate: {
          raw: leafDer,
          valid_to: new X509Certificate(leafDer).validTo,
        },
      }),
    };
    expect(verifier.client(peer).clientId).toBe("dev-a");
    await sleep(msUntilExpiry(intermediate) + 100);
    expect(() => verifier.client(peer)).toThrow(CallerRefusedError);
    verifier.close();
  }, 8000);

  it("calls are judged by the chain of their own connection, not by another connection's with the same leaf", async () => {
    const port = await start({});
    // One intermediate key issued twice: a short copy and a long one. The leaf chains through both.
    const long = await newIntermediate(identity.issuing, "shared");
    const short = await newIntermediate(identity.issuing, "shared", {
      keys: long.keys,
      lifetimeMs: 2500,
    });
    const leaf = await mintLeaf(long, `${identity.wfmSpiffeId}/client/dev-a`);
    const via = (ca: Ca): TestCredentials => ({
      certPem: `${leaf.certPem}\n${ca.cert.toString("pem")}`,
      keyPem: leaf.keyPem,
      caPem: identity.anchorsPem,
    });
    const a = wm(port, via(short));
    const b = wm(port, via(long));
    const etag = (await core.manifest("dev-a")).etag;
    expect((await call(a, a.getManifest, {})).etag).toBe(etag);
    // B connects last: a per-leaf record would now hold B's chain for A's calls too.
    expect((await call(b, b.getManifest, {})).etag).toBe(etag);
    // Past the short copy's expiry, inside the grace before A's socket is cut.
    await sleep(msUntilExpiry(short) + 150);
    const err = await call(a, a.getManifest, {}).then(
      () => undefined,
      (e: { code: number }) => e,
    );
    expect(err?.code).toBe(status.UNAUTHENTICATED);
    expect(problemOfError(err)?.status).toBe(401);
    expect((await call(b, b.getManifest, {})).etag).toBe(etag);
  }, 8000);
});
