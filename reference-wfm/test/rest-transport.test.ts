import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig } from "../src/config.js";
import { hostingCapabilities } from "./support/bodies.js";
import { brokenClientCertificates } from "./support/broken-clients.js";
import { jsonOf, type MtlsClient } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";
import { wfmIssuer } from "./support/wfm-issuer.js";

const P = "https://docs.margo.org/specification/problem-types#";

let wfm: TestWfm;
const logs: Array<{ event: string; fields: Record<string, unknown> }> = [];
let credsA: Awaited<ReturnType<TestWfm["admit"]>>;
let credsB: Awaited<ReturnType<TestWfm["admit"]>>;
let a: MtlsClient;

beforeAll(async () => {
  wfm = await startTestWfm({ log: (event, fields) => logs.push({ event, fields }) });
  credsA = await wfm.admit("client-a");
  credsB = await wfm.admit("client-b");
  a = wfm.client(credsA);
});
afterAll(async () => {
  await wfm?.dispose();
});

/** Open a raw TLS connection with the client's SVID (for ALPN, resumption and age checks). */
function tlsTo(
  opts: {
    alpn?: string[];
    session?: Buffer;
    creds?: typeof credsA;
    maxVersion?: "TLSv1.2" | "TLSv1.3";
  } = {},
): Promise<TLSSocket> {
  const creds = opts.creds ?? credsA;
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port: wfm.managementPort,
      ca: creds.trustBundlePem,
      cert: creds.certificateChainPem,
      key: creds.privateKeyPem,
      checkServerIdentity: () => undefined,
      ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
      ...(opts.session ? { session: opts.session } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** One HTTP/1.1 request over a raw socket; resolves with the status line and the raw text. */
function rawGet(s: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (c: Buffer) => {
      text += c.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? "0");
      if (text.length >= end + 4 + len) {
        s.off("data", onData);
        resolve(text);
      }
    };
    s.on("data", onData);
    s.once("error", reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: wfm\r\nConnection: keep-alive\r\n\r\n`);
  });
}

describe("transport", () => {
  it("item 1: HTTP/1.1 on port 443 by default; ALPN picks http/1.1 even when h2 is offered", async () => {
    expect(defaultConfig("/x", { trustDomain: "t.org", wfmId: "w" }).management.port).toBe(443);
    const s = await tlsTo({ alpn: ["h2", "http/1.1"] });
    expect(s.alpnProtocol).toBe("http/1.1");
    const text = await rawGet(s, "/api/v1/deployments");
    expect(text.startsWith("HTTP/1.1 200 ")).toBe(true);
    s.destroy();
  });

  it("item 2: TLS 1.3 by default, 1.2 as fallback, 1.1 refused", async () => {
    expect((await a.get("/api/v1/deployments")).protocol).toBe("TLSv1.3");
    const c12 = wfm.client(credsA, { maxVersion: "TLSv1.2" });
    const r12 = await c12.get("/api/v1/deployments");
    expect(r12.status).toBe(200);
    expect(r12.protocol).toBe("TLSv1.2");
    const c11 = wfm.client(credsA, { minVersion: "TLSv1", maxVersion: "TLSv1.1" });
    await expect(c11.get("/api/v1/deployments")).rejects.toThrow();
  });

  it("item 3: no client certificate, no request", async () => {
    const anon = wfm.client(undefined);
    await expect(anon.get("/api/v1/deployments")).rejects.toThrow();
    await expect(
      anon.sendJson("PUT", "/api/v1/capabilities/anon", hostingCapabilities("anon")),
    ).rejects.toThrow();
  });

  it("item 12: the WFM presents its SVID with exactly its SPIFFE ID, chaining to the bundle", async () => {
    const res = await a.get("/api/v1/deployments");
    expect(res.serverSpiffeId).toBe(wfm.identity.wfmSpiffeId);
    expect(res.serverSpiffeId).toBe("spiffe://example.org/margo/wfm/wfm-test");
  });

  it("item 13: TLS sessions are never resumed, so every connection re-presents the SVID", async () => {
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      const first = await tlsTo({ maxVersion: version });
      const session = new Promise<Buffer>((resolve) => first.once("session", resolve));
      await rawGet(first, "/api/v1/deployments");
      // 1.2 state exists once the handshake is done (its event fired before we listened); 1.3
      // state comes with the server's post-handshake ticket, if it sends one.
      const offered =
        version === "TLSv1.2"
          ? first.getSession()
          : await Promise.race([
              session,
              new Promise<undefined>((r) => setTimeout(() => r(undefined), 500)),
            ]);
      // A resumption attempt needs session state to offer; without it this test proves nothing.
      expect(offered, version).toBeInstanceOf(Buffer);
      // TLS 1.2: no ticket at all (session-ID state only). TLS 1.3 always sends one; the server
      // keeps no session cache, so it can never be redeemed.
      if (version === "TLSv1.2") expect(first.getTLSTicket(), version).toBeUndefined();
      first.destroy();
      const second = await tlsTo({ maxVersion: version, ...(offered ? { session: offered } : {}) });
      expect(second.getProtocol()).toBe(version);
      expect(second.isSessionReused(), version).toBe(false);
      expect((await rawGet(second, "/api/v1/deployments")).startsWith("HTTP/1.1 200")).toBe(true);
      second.destroy();
    }
  });

  it("item 13: a keep-alive connection is closed when the client SVID expires", async () => {
    const short = await wfm.core.issueClientCredentials("client-a", 2);
    const s = await tlsTo({ creds: short });
    expect((await rawGet(s, "/api/v1/deployments")).startsWith("HTTP/1.1 200")).toBe(true);
    const started = Date.now();
    await new Promise<void>((resolve) => s.once("close", () => resolve()));
    const left = (short.notAfter?.getTime() ?? 0) - started;
    // Closed by the SVID's notAfter, well before the 5 s idle keep-alive timeout.
    expect(Date.now() - started).toBeLessThan(Math.max(left, 0) + 1500);
  });

  it("items 4 and 14: identity comes from the certificate only; Client-Cert headers are ignored", async () => {
    const res = await a.request("PUT", "/api/v1/capabilities/hdr-dev", {
      headers: {
        "content-type": "application/json",
        "client-cert": `:${Buffer.from(credsB.certificateChainPem).toString("base64")}:`,
        "client-cert-chain": `:${Buffer.from(credsB.certificateChainPem).toString("base64")}:`,
      },
      body: JSON.stringify(hostingCapabilities("hdr-dev")),
    });
    expect(res.status).toBe(201);
    expect(await wfm.core.getDevice("client-a", "hdr-dev")).toBeDefined();
    expect(await wfm.core.getDevice("client-b", "hdr-dev")).toBeUndefined();
  });

  it("item 15: no onboarding or legacy path exists, even for an authenticated client", async () => {
    for (const path of [
      "/api/v1/onboarding",
      "/api/v1/onboarding/certificate",
      "/api/v1/clients/client-a/deployments",
    ]) {
      const res = await a.get(path);
      expect(res.status, path).toBe(404);
      expect(jsonOf(res).type).toBe("about:blank");
    }
    const post = await a.sendJson("POST", "/api/v1/onboarding", { certificate: "x" });
    expect(post.status).toBe(404);
  });
});

describe("client certificate checks (never reaching a handler)", () => {
  it("items 6, 9, 10, 11: every broken client certificate is refused at the connection", async () => {
    const broken = await brokenClientCertificates(await wfmIssuer(wfm.dataDir));
    for (const b of broken) {
      logs.length = 0;
      const client = wfm.client(undefined, { client: b.pem });
      const deviceId = `broken-${b.name.replace(/[^a-z0-9]+/gi, "-")}`;
      await expect(
        client.sendJson("PUT", `/api/v1/capabilities/${deviceId}`, hostingCapabilities(deviceId)),
        `item ${b.item}: ${b.name}`,
      ).rejects.toThrow();
      // Nothing was written under the identity the certificate claims.
      expect(await wfm.core.getDevice("client-a", deviceId), b.name).toBeUndefined();
      if (b.rule) {
        const refused = logs.find((l) => l.event === "client-certificate-refused");
        expect(refused?.fields.rule, `item ${b.item}: ${b.name}`).toBe(b.rule);
      } else {
        expect(
          logs.some((l) => l.event === "tls-handshake-failed"),
          b.name,
        ).toBe(true);
      }
    }
  });

  it("item 11: a P-256 SVID minted by the WFM is accepted", async () => {
    expect((await a.get("/api/v1/deployments")).status).toBe(200);
  });

  it("item 7: a still-valid SVID of a removed client gets 403 #not-authorized, re-admission restores it", async () => {
    const creds = await wfm.admit("client-r");
    const c = wfm.client(creds);
    expect((await c.get("/api/v1/deployments")).status).toBe(200);
    await wfm.core.removeClient("client-r");
    for (const res of [
      await c.get("/api/v1/deployments"),
      await c.sendJson("PUT", "/api/v1/capabilities/r-dev", hostingCapabilities("r-dev")),
      await c.request("DELETE", "/api/v1/capabilities/r-dev"),
    ]) {
      expect(res.status).toBe(403);
      expect(res.headers["content-type"]).toBe("application/problem+json");
      expect(jsonOf(res).type).toBe(`${P}not-authorized`);
      expect(jsonOf(res).retryable).toBe(false);
    }
    expect(await wfm.core.getDevice("client-r", "r-dev")).toBeUndefined();
    await wfm.core.addClient("client-r");
    expect((await c.get("/api/v1/deployments")).status).toBe(200);
  });

  it("item 7: a client that was never admitted but holds a valid SVID is 403", async () => {
    const creds = await wfm.identity.mintClient("never-admitted");
    const res = await wfm.client(creds).get("/api/v1/deployments");
    expect(res.status).toBe(403);
    expect(jsonOf(res).type).toBe(`${P}not-authorized`);
  });
});
