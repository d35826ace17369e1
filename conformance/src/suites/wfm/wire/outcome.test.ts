import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import type { CheckTools } from "../../../core/types.js";
import type { WireClient } from "../context.js";
import {
  attempt,
  ControlNotServed,
  expectServed,
  isWfmRefusal,
  NoVerdictTransportError,
} from "./outcome.js";
import { createWireClient, WireTransportError } from "./wire-client.js";

const tools = {
  signal: new AbortController().signal,
  evidence() {},
  note() {},
} as unknown as CheckTools;

function client(port: number, keyPem = ""): WireClient {
  return createWireClient({
    baseUrl: `https://127.0.0.1:${port}`,
    credentials: keyPem ? { chainPem: "not a certificate", keyPem } : null,
    actor: "test client",
    anchors: [],
    trustDomain: "example.org",
    timeoutMs: 2000,
  });
}

async function listen(onConn: (s: import("node:net").Socket) => void): Promise<[Server, number]> {
  const server = createServer(onConn);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return [server, (server.address() as { port: number }).port];
}

describe("isWfmRefusal", () => {
  it.each([
    [
      "TLS alert after connect",
      new WireTransportError("handshake", "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", "", true),
      true,
    ],
    [
      "alert reported as EPROTO",
      new WireTransportError(
        "handshake",
        "EPROTO",
        "write EPROTO ...:tlsv1 alert protocol version:...:SSL alert number 70",
        true,
      ),
      true,
    ],
    [
      "EPROTO without an alert",
      new WireTransportError("handshake", "EPROTO", "write EPROTO wrong version number", true),
      false,
    ],
    ["reset after connect", new WireTransportError("request", "ECONNRESET", "", true), true],
    ["broken pipe after connect", new WireTransportError("request", "EPIPE", "", true), true],
    [
      "reset without a TCP connection",
      new WireTransportError("handshake", "ECONNRESET", "", false),
      false,
    ],
    ["nobody listening", new WireTransportError("handshake", "ECONNREFUSED", "", false), false],
    ["timeout after connect", new WireTransportError("handshake", "ETIMEDOUT", "", true), false],
    ["name not found", new WireTransportError("handshake", "ENOTFOUND", "", false), false],
    [
      "harness-side setup",
      new WireTransportError("setup", "ERR_OSSL_PEM_NO_START_LINE", "", false),
      false,
    ],
    [
      "local protocol mismatch",
      new WireTransportError("handshake", "ERR_SSL_NO_PROTOCOLS_AVAILABLE", "", true),
      false,
    ],
  ])("%s", (_n, e, refusal) => expect(isWfmRefusal(e)).toBe(refusal));
});

describe("attempt over real sockets", () => {
  it("ECONNREFUSED is no verdict, not a refusal", async () => {
    const [server, port] = await listen(() => {});
    server.close();
    await once(server, "close");
    const c = client(port);
    await expect(attempt(tools, c, { method: "GET", path: "/" })).rejects.toBeInstanceOf(
      NoVerdictTransportError,
    );
    c.close();
  });
  it("a server that accepts the TCP connection and hangs up is a refusal", async () => {
    const [server, port] = await listen((s) => s.destroy());
    const c = client(port);
    const a = await attempt(tools, c, { method: "GET", path: "/", fresh: true });
    expect(a.kind).toBe("refused");
    c.close();
    server.close();
  });
  it("a TLS context the harness cannot build is no verdict (setup)", async () => {
    const [server, port] = await listen((s) => s.destroy());
    const c = client(port, "not a key");
    const err = await attempt(tools, c, { method: "GET", path: "/", fresh: true }).catch((e) => e);
    expect(err).toBeInstanceOf(NoVerdictTransportError);
    expect((err as NoVerdictTransportError).transport.stage).toBe("setup");
    c.close();
    server.close();
  });
  it("a control that is not served is an error naming it", async () => {
    const [server, port] = await listen((s) => s.destroy());
    const c = client(port);
    await expect(expectServed(tools, c, { method: "GET", path: "/x" }, "client a")).rejects.toThrow(
      ControlNotServed,
    );
    c.close();
    server.close();
  });
});
