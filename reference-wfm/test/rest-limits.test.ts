import { type Socket, connect as tcpConnect } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import type { admin } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostingCapabilities } from "./support/bodies.js";
import { jsonOf } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm, testLimits } from "./support/start-wfm.js";

/**
 * Connection limits of the Management Interface with short values: every stage of a connection
 * (handshake, headers, whole request, body silence, age) is bounded, and so is their number.
 */

const HANDSHAKE_MS = 300;
const HEADERS_MS = 400;
/** An older wfm.json's whole-request bound: no longer a cap on a body that keeps coming. */
const OLD_REQUEST_MS = 1200;
const BODY_IDLE_MS = 400;
const BODY_GRACE_MS = 800;
const MIN_BODY_RATE = 16_000;
/** Node sweeps for header/request timeouts every HEADERS_MS / 4; scheduling adds the rest. */
const SLACK_MS = 700;

let wfm: TestWfm;
let creds: admin.ClientCredentials;
const logs: Array<{ event: string; fields: Record<string, unknown> }> = [];

beforeAll(async () => {
  wfm = await startTestWfm({
    log: (event, fields) => logs.push({ event, fields }),
    config: {
      managementLimits: testLimits({
        handshakeTimeoutMs: HANDSHAKE_MS,
        headersTimeoutMs: HEADERS_MS,
        requestTimeoutMs: OLD_REQUEST_MS,
        bodyIdleTimeoutMs: BODY_IDLE_MS,
        bodyGraceMs: BODY_GRACE_MS,
        minBodyBytesPerSecond: MIN_BODY_RATE,
      }),
    },
  });
  creds = await wfm.admit("client-a");
});
afterAll(async () => {
  await wfm?.dispose();
});

/** A TLS connection presenting `c`, past its handshake. */
function tlsTo(port: number, c: admin.ClientCredentials): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port,
      ca: c.trustBundlePem,
      cert: c.certificateChainPem,
      key: c.privateKeyPem,
      checkServerIdentity: () => undefined,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the server sends until it closes the socket, and how long after `since` it closed. */
function untilClosed(s: Socket, since: number): Promise<{ text: string; afterMs: number }> {
  return new Promise((resolve) => {
    let text = "";
    s.on("data", (c: Buffer) => {
      text += c.toString("latin1");
    });
    s.on("error", () => undefined);
    s.once("close", () => resolve({ text, afterMs: Date.now() - since }));
  });
}

/** Write `piece` every `everyMs` until the socket closes (a slow-loris client). */
function trickle(s: Socket, piece: string, everyMs: number): void {
  const t = setInterval(() => {
    if (s.writable) s.write(piece);
  }, everyMs);
  s.once("close", () => clearInterval(t));
}

describe("connection stage timeouts", () => {
  it("a TCP connection that never starts a handshake is closed after the handshake timeout", async () => {
    logs.length = 0;
    const started = Date.now();
    const s = tcpConnect(wfm.managementPort, "127.0.0.1");
    const { afterMs } = await untilClosed(s, started);
    expect(afterMs).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(afterMs).toBeLessThan(HANDSHAKE_MS + SLACK_MS);
    const failed = logs.find((l) => l.event === "tls-handshake-failed");
    expect(String(failed?.fields.message)).toMatch(/timed out|timeout/i);
  });

  it("headers sent a line at a time are cut off with 408 after the headers timeout", async () => {
    const s = await tlsTo(wfm.managementPort, creds);
    const started = Date.now();
    const closed = untilClosed(s, started);
    s.write("GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\n");
    trickle(s, "X-Slow: 1\r\n", 50);
    const { text, afterMs } = await closed;
    expect(text.startsWith("HTTP/1.1 408 ")).toBe(true);
    expect(afterMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it("a steady slow 100 KB upload finishes however long it takes (past the old request timeout)", async () => {
    const body = Buffer.from(JSON.stringify(hostingCapabilities("steady-dev")));
    const padded = Buffer.concat([body, Buffer.alloc(100 * 1024 - body.length, " ")]);
    const s = await tlsTo(wfm.managementPort, creds);
    const started = Date.now();
    const closed = untilClosed(s, started);
    s.write(
      "PUT /api/v1/capabilities/steady-dev HTTP/1.1\r\nHost: wfm\r\nConnection: close\r\n" +
        `Content-Type: application/json\r\nContent-Length: ${padded.length}\r\n\r\n`,
    );
    // 4 KiB every 100 ms: about 40 KB/s, 2.5 times the least rate, for about 2.5 s.
    for (let at = 0; at < padded.length; at += 4096) {
      await new Promise((r) => setTimeout(r, 100));
      s.write(padded.subarray(at, at + 4096));
    }
    const { text, afterMs } = await closed;
    expect(text.slice(0, 40)).toMatch(/^HTTP\/1\.1 201 /);
    expect(afterMs).toBeGreaterThan(OLD_REQUEST_MS + 500);
    expect(await wfm.core.getDevice("client-a", "steady-dev")).toBeDefined();
  });

  it("a body that keeps trickling below the least average rate is answered 408 problem+json after the grace", async () => {
    const s = await tlsTo(wfm.managementPort, creds);
    const started = Date.now();
    const closed = untilClosed(s, started);
    s.write(
      "PUT /api/v1/capabilities/slow-dev HTTP/1.1\r\nHost: wfm\r\n" +
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
    );
    // 100 bytes every 50 ms (2 KB/s): never idle, far below the least rate.
    trickle(s, " ".repeat(100), 50);
    const { text, afterMs } = await closed;
    expect(text.startsWith("HTTP/1.1 408 ")).toBe(true);
    expect(text).toMatch(/content-type: application\/problem\+json/i);
    expect(text).toMatch(/connection: close/i);
    const problem = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
    expect(problem.type).toBe("about:blank");
    expect(String(problem.detail)).toMatch(new RegExp(`${MIN_BODY_RATE} bytes/s`));
    expect(afterMs).toBeGreaterThanOrEqual(BODY_GRACE_MS - 50);
    expect(afterMs).toBeLessThan(BODY_GRACE_MS + SLACK_MS);
    expect(await wfm.core.getDevice("client-a", "slow-dev")).toBeUndefined();
  });

  it("a body that goes quiet is answered 408 problem+json after the body idle timeout", async () => {
    const s = await tlsTo(wfm.managementPort, creds);
    const started = Date.now();
    const closed = untilClosed(s, started);
    s.write(
      "PUT /api/v1/capabilities/idle-dev HTTP/1.1\r\nHost: wfm\r\n" +
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    );
    const { text, afterMs } = await closed;
    expect(text.startsWith("HTTP/1.1 408 ")).toBe(true);
    expect(text).toMatch(/content-type: application\/problem\+json/i);
    expect(text).toMatch(/connection: close/i);
    // Before the grace is over, so it is the idle rule that fired.
    expect(afterMs).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
    expect(afterMs).toBeLessThan(BODY_GRACE_MS);
    expect(await wfm.core.getDevice("client-a", "idle-dev")).toBeUndefined();
  });

  it("the MIS trust listener (no client certificate) bounds handshakes and headers the same way", async () => {
    const raw = tcpConnect(wfm.trustPort, "127.0.0.1");
    const rawClosed = await untilClosed(raw, Date.now());
    expect(rawClosed.afterMs).toBeLessThan(HANDSHAKE_MS + SLACK_MS);
    const s = await new Promise<TLSSocket>((resolve, reject) => {
      const t = connect({
        host: "127.0.0.1",
        port: wfm.trustPort,
        ca: creds.trustBundlePem,
        checkServerIdentity: () => undefined,
      });
      t.once("secureConnect", () => resolve(t));
      t.once("error", reject);
    });
    const started = Date.now();
    const closed = untilClosed(s, started);
    s.write("GET /.well-known/margo HTTP/1.1\r\nHost: wfm\r\n");
    trickle(s, "X-Slow: 1\r\n", 50);
    const { text, afterMs } = await closed;
    expect(text.startsWith("HTTP/1.1 408 ")).toBe(true);
    expect(afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it("an idle keep-alive connection is not cut by the headers timeout", async () => {
    const c = wfm.client(creds, { keepAlive: true });
    expect((await c.get("/api/v1/deployments")).status).toBe(200);
    await new Promise((r) => setTimeout(r, HEADERS_MS + SLACK_MS));
    const again = await c.get("/api/v1/deployments");
    expect(again.status).toBe(200);
    c.close();
  });
});

describe("connection cap and age", () => {
  it("connections beyond maxConnections are dropped at accept, handshaken or not", async () => {
    const capped = await startTestWfm({
      log: (event, fields) => logs.push({ event, fields }),
      config: { managementLimits: testLimits({ maxConnections: 2 }) },
    });
    const held: Socket[] = [];
    try {
      const c = await capped.admit("client-c");
      logs.length = 0;
      // Two silent TCP connections fill the cap without ever authenticating.
      for (let i = 0; i < 2; i++) {
        const s = tcpConnect(capped.managementPort, "127.0.0.1");
        await new Promise<void>((r) => s.once("connect", () => r()));
        held.push(s);
      }
      await new Promise((r) => setTimeout(r, 50));
      await expect(tlsTo(capped.managementPort, c)).rejects.toThrow();
      expect(logs.some((l) => l.event === "connections-dropped")).toBe(true);
      for (const s of held) s.destroy();
      // Once the server has seen them go, a client gets in again.
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = await capped
          .client(c)
          .get("/api/v1/deployments")
          .then((r) => r.status)
          .catch(() => 0);
      }
      expect(status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
      await capped.dispose();
    }
  });

  it("item 13: a keep-alive connection is closed at the connection-age cap, SVID still valid", async () => {
    const AGE_MS = 300;
    const aged = await startTestWfm({
      config: { managementLimits: testLimits({ maxConnectionAgeMs: AGE_MS }) },
    });
    try {
      const c = await aged.admit("client-d");
      const s = await tlsTo(aged.managementPort, c);
      const started = Date.now();
      const closed = untilClosed(s, started);
      s.write("GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\nConnection: keep-alive\r\n\r\n");
      const { text, afterMs } = await closed;
      expect(text.startsWith("HTTP/1.1 200 ")).toBe(true);
      // Far below Node's 5 s keep-alive and the SVID's lifetime of days.
      expect(afterMs).toBeGreaterThanOrEqual(AGE_MS - 100);
      expect(afterMs).toBeLessThan(AGE_MS + 500);
      expect(c.notAfter?.getTime() ?? 0).toBeGreaterThan(Date.now() + 3600_000);
    } finally {
      await aged.dispose();
    }
  });
});

describe("rate limit before authorization", () => {
  it("item 85: refused clients are throttled too (403 until the bucket is empty, then 429); HEAD stays 405", async () => {
    const limited = await startTestWfm({
      config: { rateLimit: { requestsPerSecond: 1, burst: 2 } },
    });
    try {
      const gone = limited.client(await limited.admit("client-gone"));
      await limited.core.removeClient("client-gone");
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await gone.get("/api/v1/deployments"));
      expect(answers.map((r) => r.status)).toEqual([403, 403, 429, 429]);
      const last = answers[3];
      expect(Number(last?.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(last && jsonOf(last).type).toBe("about:blank");

      const ok = limited.client(await limited.admit("client-ok"));
      const head = await ok.request("HEAD", "/api/v1/deployments");
      expect(head.status).toBe(405);
      expect(head.headers.allow).toBe("GET");
    } finally {
      await limited.dispose();
    }
  });
});
