import { createHash } from "node:crypto";
import { connect, type SecureVersion, type TLSSocket } from "node:tls";
import { type Client, type ClientReadableStream, type Metadata, status } from "@grpc/grpc-js";
import { api, BackoffStrategy, wfmDriver } from "@margo/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer } from "../src/grpc/server.js";
import type { GrpcServerOptions, RunningGrpcServer } from "../src/grpc/server-contract.js";
import { RateLimiter } from "../src/http/rate-limit.js";
import {
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
 * The gRPC edge's hardening against the REST edge's standard: the same TLS policy, per-client
 * budgets and body limits, full peer chains, and streams that do not outlive the caller's right
 * to them. Real TLS on loopback with certificates from a real (test) CA throughout.
 */

const INFO: GrpcServerOptions["info"] = {
  vendor: "margo-reference",
  product: "reference-wfm",
  version: "0.0.0",
  margoVersion: "1.0.0-rc.3",
  features: [],
};

const servers: RunningGrpcServer[] = [];
const open: Client[] = [];

async function start(
  identity: TestIdentity,
  core: MemoryCore,
  extra: Partial<GrpcServerOptions> = {},
): Promise<string> {
  const server = await startGrpcServer({
    core,
    identity,
    listen: { host: "127.0.0.1", port: 0 },
    info: INFO,
    ...extra,
  });
  servers.push(server);
  return `127.0.0.1:${server.port}`;
}

function wm(target: string, creds: TestCredentials): api.WorkloadManagementServiceClient {
  const c = new api.WorkloadManagementServiceClient(
    target,
    channelCredentials(creds),
    TEST_CHANNEL_OPTIONS,
  );
  open.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<{ code: number; metadata?: Metadata }> {
  return p.then(
    () => {
      throw new Error("call unexpectedly succeeded");
    },
    (e: unknown) => e as { code: number; metadata?: Metadata },
  );
}

/** Resolves with the status a server stream ends with (never with its data). */
function streamEnd(
  stream: ClientReadableStream<unknown>,
): Promise<{ code: number; metadata?: Metadata; at: number }> {
  stream.on("data", () => undefined);
  return new Promise((resolve) => {
    stream.on("error", (e: { code: number; metadata?: Metadata }) =>
      resolve({ code: e.code, ...(e.metadata ? { metadata: e.metadata } : {}), at: Date.now() }),
    );
    stream.on("end", () => resolve({ code: status.OK, at: Date.now() }));
  });
}

/** The first message of a stream, so a test knows the stream is open and admitted. */
function firstMessage(stream: ClientReadableStream<unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    stream.once("data", resolve);
    stream.once("error", reject);
  });
}

let identity: TestIdentity;
let core: MemoryCore;
let target: string;
let clientCreds: TestCredentials;

beforeAll(async () => {
  identity = await TestIdentity.create();
  core = new MemoryCore();
  core.accepted.add("dev-a");
  target = await start(identity, core);
  clientCreds = await identity.client("dev-a");
});

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A raw TLS client with the dev-a SVID, offering h2 as gRPC does. */
function rawTls(
  port: number,
  opts: { maxVersion?: SecureVersion; session?: Buffer; ciphers?: string } = {},
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      ca: clientCreds.caPem,
      cert: clientCreds.certPem,
      key: clientCreds.keyPem,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
      ...(opts.session ? { session: opts.session } : {}),
      ...(opts.ciphers ? { ciphers: opts.ciphers } : {}),
    });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("TLS policy shared with the REST edge", () => {
  const port = () => Number(target.split(":")[1]);

  it("item 2: TLS 1.3 is preferred; a TLS 1.2 client gets an AEAD suite, never CBC/SHA-1", async () => {
    const modern = await rawTls(port());
    expect(modern.getProtocol()).toBe("TLSv1.3");
    expect(modern.alpnProtocol).toBe("h2");
    modern.destroy();

    // The client prefers CBC with SHA-1: the server's order and list must still give AEAD.
    const legacy = await rawTls(port(), {
      maxVersion: "TLSv1.2",
      ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256",
    });
    expect(legacy.getProtocol()).toBe("TLSv1.2");
    expect(legacy.getCipher().name).toBe("ECDHE-ECDSA-AES128-GCM-SHA256");
    legacy.destroy();
    await expect(
      rawTls(port(), { maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-SHA" }),
    ).rejects.toThrow();
  });

  it("item 13: a second connection offering the first one's session is not resumed", async () => {
    const first = await rawTls(port(), { maxVersion: "TLSv1.2" });
    // In TLS 1.2 the session (id, or ticket if the server issued one) is known at the handshake.
    const session = first.getSession();
    expect(session).toBeInstanceOf(Buffer);
    expect(first.getTLSTicket()).toBeUndefined();
    first.destroy();
    const second = await rawTls(port(), { maxVersion: "TLSv1.2", session: session as Buffer });
    expect(second.isSessionReused()).toBe(false);
    second.destroy();
  });
});

describe("per-client budget and body limit", () => {
  it("item 85: a client over its budget gets RESOURCE_EXHAUSTED with the REST 429 problem and retry-after", async () => {
    const limited = new MemoryCore();
    limited.accepted.add("dev-a");
    const t = await start(identity, limited, { rateLimit: { requestsPerSecond: 0.01, burst: 2 } });
    const c = wm(t, clientCreds);
    await call(c, c.getManifest, {});
    await call(c, c.getManifest, {});
    const err = await failure(call(c, c.getManifest, {}));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    const problem = problemOfError(err);
    expect(problem).toMatchObject({
      type: "about:blank",
      status: 429,
      retryable: true,
      backoffStrategy: BackoffStrategy.BACKOFF_STRATEGY_EXPONENTIAL,
    });
    const wait = Number(problem?.retryAfterSeconds);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(err.metadata?.get("retry-after")).toEqual([String(wait)]);
    // A watch open is a call too; the budget is the client's, so dev-b still gets through.
    expect((await failure(firstMessage(c.watchManifest({})))).code).toBe(status.RESOURCE_EXHAUSTED);
    limited.accepted.add("dev-b");
    const b = wm(t, await identity.client("dev-b"));
    expect((await call(b, b.getManifest, {})).notModified).toBe(false);
    // Operators drive tests and administration: they are not throttled.
    const d = new wfmDriver.WfmDriverServiceClient(
      t,
      channelCredentials(await identity.operatorCreds("alice")),
      TEST_CHANNEL_OPTIONS,
    );
    open.push(d);
    for (let i = 0; i < 4; i++) await call(d, d.info, {});
  });

  it("item 85: a limiter passed in is one budget with the other binding (REST takes, gRPC refuses)", async () => {
    const shared = new RateLimiter(0.01, 1);
    const t = await start(identity, core, { rateLimit: shared });
    expect(shared.take("dev-a")).toBe(0);
    const c = wm(t, clientCreds);
    expect((await failure(call(c, c.getManifest, {}))).code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it("a body over maxBodyBytes is the REST 413 problem; far over, grpc-js drops it unread", async () => {
    const t = await start(identity, core, { maxBodyBytes: 1000 });
    const c = wm(t, clientCreds);
    const fits = Buffer.from(JSON.stringify({ pad: "x".repeat(980) }));
    expect(fits.length).toBeLessThanOrEqual(1000);
    await call(c, c.putCapabilities, { deviceId: "big", body: fits });
    const over = Buffer.alloc(1001, 0x20);
    const err = await failure(call(c, c.putCapabilities, { deviceId: "big", body: over }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(problemOfError(err)).toMatchObject({ status: 413 });
    const huge = Buffer.alloc(200_000, 0x20);
    const dropped = await failure(call(c, c.reportStatus, { deploymentId: "x", body: huge }));
    expect(dropped.code).toBe(status.RESOURCE_EXHAUSTED);
  });
});

describe("peer chains", () => {
  it("a client SVID issued through an intermediate CA is accepted (the full chain is verified)", async () => {
    const intermediate = await newIntermediate(identity.issuing, "intermediate");
    const leaf = await mintLeaf(intermediate, `${identity.wfmSpiffeId}/client/dev-a`);
    const creds = {
      certPem: `${leaf.certPem}\n${intermediate.cert.toString("pem")}`,
      keyPem: leaf.keyPem,
      caPem: identity.anchorsPem,
    };
    const c = wm(target, creds);
    const res = await call(c, c.getManifest, {});
    expect(res.etag).toBe((await core.manifest("dev-a")).etag);
  });
});

describe("content-addressed bodies", () => {
  it("item 39: the ETag is the requested digest the core answered, not a re-hash per call", async () => {
    const bytes = Buffer.from("bundle bytes");
    // A digest the test core files these bytes under; the edge must not second-guess the core.
    const digest = `sha256:${"ab".repeat(32)}`;
    expect(digest).not.toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    core.bundles.set(digest, bytes);
    const c = wm(target, clientCreds);
    const res = await call(c, c.getBundle, { digest });
    expect(res.etag).toBe(`"${digest}"`);
    expect(Buffer.compare(res.body, bytes)).toBe(0);
    const cached = await call(c, c.getBundle, { digest, ifNoneMatch: `"${digest}"` });
    expect(cached.notModified).toBe(true);
  });
});

describe("WatchManifest does not outlive the caller's right to it", () => {
  it("item 13: the stream ends UNAUTHENTICATED when the client SVID expires", async () => {
    const lifetimeMs = 2500;
    const short = await mintLeaf(identity.issuing, `${identity.wfmSpiffeId}/client/dev-a`, {
      lifetimeMs,
    });
    // X.509 validity has whole seconds: the certificate ends at most 1 s before the asked time.
    const notAfter = Math.floor((Date.now() + lifetimeMs) / 1000) * 1000;
    const c = wm(target, { ...short, caPem: identity.anchorsPem });
    const stream = c.watchManifest({});
    const ended = streamEnd(stream);
    await firstMessage(stream);
    const end = await ended;
    expect(end.code).toBe(status.UNAUTHENTICATED);
    expect(end.at).toBeGreaterThanOrEqual(notAfter - 50);
    expect(end.at).toBeLessThan(notAfter + 1000);
  });

  it("item 13: retiring the anchor that issued the caller's SVID ends the stream", async () => {
    const own = await TestIdentity.create();
    const ownCore = new MemoryCore();
    ownCore.accepted.add("dev-a");
    const t = await start(own, ownCore);
    const c = wm(t, await own.client("dev-a"));
    const stream = c.watchManifest({});
    const ended = streamEnd(stream);
    await firstMessage(stream);
    await own.replaceAuthority();
    const end = await ended;
    expect(end.code).toBe(status.UNAUTHENTICATED);
    expect(problemOfError(end)?.status).toBe(401);
    await expect.poll(() => ownCore.watcherCount("dev-a"), { timeout: 2000 }).toBe(0);
  });

  it("a removed client's stream ends on the next identity change, without waiting for a push", async () => {
    const own = await TestIdentity.create();
    const ownCore = new MemoryCore();
    ownCore.accepted.add("dev-a");
    const t = await start(own, ownCore);
    const c = wm(t, await own.client("dev-a"));
    const stream = c.watchManifest({});
    const ended = streamEnd(stream);
    await firstMessage(stream);
    ownCore.accepted.delete("dev-a");
    // An identity change after which the SVID still verifies: only the acceptance is gone.
    await own.renewServer();
    const end = await ended;
    expect(end.code).toBe(status.PERMISSION_DENIED);
  });

  it("connections have a maximum age: a long-lived stream is ended after it plus the grace", async () => {
    const t = await start(identity, core, {
      maxConnectionAgeMs: 300,
      maxConnectionAgeGraceMs: 200,
    });
    const c = wm(t, clientCreds);
    const opened = Date.now();
    const stream = c.watchManifest({});
    const ended = streamEnd(stream);
    await firstMessage(stream);
    const end = await ended;
    expect(end.code).not.toBe(status.OK);
    // Age, up to 10% jitter, and grace.
    expect(end.at - opened).toBeLessThan(2000);
  });
});
