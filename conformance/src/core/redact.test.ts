import { createRootCa } from "@margo/proto/identity";
import { describe, expect, it } from "vitest";
import {
  bodyEvidence,
  learnSecretEnv,
  looksSecretName,
  MAX_BODY_BYTES,
  REDACTED,
  redactEvidence,
  redactHeaders,
  redactText,
  sanitize,
  sha256Hex,
} from "./redact.js";
import type { Evidence } from "./types.js";

describe("redaction", () => {
  it("removes every private key block, whatever its kind", async () => {
    const ca = await createRootCa({ trustDomain: "redact.test" });
    const text = `key:\n${ca.keyPem}\nrsa:\n-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\nec:\n-----BEGIN EC PRIVATE KEY-----\nBBBB\n-----END EC PRIVATE KEY-----\nend`;
    const out = redactText(text);
    expect(out).not.toMatch(/PRIVATE KEY-----/);
    expect(out).not.toContain("AAAA");
    expect(out).not.toContain("BBBB");
    expect(out).toContain("[redacted RSA PRIVATE KEY]");
    expect(out).toContain("end");
  });

  it("summarises certificates as fingerprint + subject instead of PEM", async () => {
    const ca = await createRootCa({ trustDomain: "redact.test", commonName: "Summary CA" });
    const out = redactText(`chain:\n${ca.certPem}`);
    expect(out).not.toContain("BEGIN CERTIFICATE");
    expect(out).toMatch(/\[certificate sha256=[0-9a-f]{64} subject="[^"]*Summary CA[^"]*"/);
    expect(out).toContain(sha256Hex(ca.certDer));
  });

  it("redacts authorization, cookies and bearer tokens, keeping the scheme", () => {
    expect(
      redactHeaders({
        Authorization: "Bearer s3cr3t-token-value",
        cookie: "a=b",
        "set-cookie": ["x=y"],
        "content-type": "application/json",
      }),
    ).toEqual({
      Authorization: `Bearer ${REDACTED}`,
      cookie: REDACTED,
      "set-cookie": [REDACTED],
      "content-type": "application/json",
    });
    expect(redactText("header was Bearer eyJhbGciOi.abc.def here")).toBe(
      `header was Bearer ${REDACTED} here`,
    );
  });

  it("truncates bodies over 64 KiB keeping size and sha256 of the full body", () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 1000, "a");
    const b = bodyEvidence(big);
    expect(b.truncated).toBe(true);
    expect(b.sizeBytes).toBe(MAX_BODY_BYTES + 1000);
    expect(b.sha256).toBe(sha256Hex(big));
    expect(b.text?.length).toBe(MAX_BODY_BYTES);
    const bin = bodyEvidence(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff]));
    expect(bin.base64).toBe(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff]).toString("base64"));
    expect(bin.text).toBeUndefined();
    // a body given as text by a wire client is capped too
    const e = redactEvidence({
      kind: "http",
      at: "t",
      durationMs: 1,
      request: { method: "GET", url: "u", headers: {} },
      response: {
        status: 200,
        headers: {},
        body: {
          text: "x".repeat(MAX_BODY_BYTES * 2),
          sizeBytes: MAX_BODY_BYTES * 2,
          sha256: "s",
          truncated: false,
        },
      },
    });
    expect(e.kind === "http" && e.response?.body?.truncated).toBe(true);
    expect(e.kind === "http" && (e.response?.body?.text?.length ?? 0) < MAX_BODY_BYTES + 100).toBe(
      true,
    );
  });

  it("sanitises gRPC payloads: bigint, bytes, secret keys, key PEMs", async () => {
    const ca = await createRootCa({ trustDomain: "redact.test" });
    const e: Evidence = {
      kind: "grpc",
      at: "t",
      durationMs: 1,
      method: "/margo.driver.device.v1.DeviceDriverService/Configure",
      request: {
        token: "t0k3n",
        clientKeyPem: ca.keyPem,
        manifestVersion: 18446744073709551615n,
        blob: new Uint8Array([1, 2, 3]),
      },
      response: { ok: true },
    };
    const out = redactEvidence(e);
    const text = JSON.stringify(out);
    expect(text).not.toContain("t0k3n");
    expect(text).not.toContain("PRIVATE KEY-----");
    expect(text).toContain('"18446744073709551615"');
    expect(
      sanitize({ privateKeyPem: "opaque", clientSecret: "s", accessToken: "t", tokenFile: "/p" }),
    ).toEqual({
      privateKeyPem: REDACTED,
      clientSecret: REDACTED,
      accessToken: REDACTED,
      tokenFile: "/p",
    });
    expect(sanitize({ a: new Uint8Array([0, 1]) })).toEqual({
      a: { base64: "AAE=", sizeBytes: 2, sha256: sha256Hex(new Uint8Array([0, 1])) },
    });
  });

  it("redacts command output and notes", () => {
    const out = redactEvidence({
      kind: "command",
      at: "t",
      command: "x",
      exitCode: 0,
      stdout: "-----BEGIN PRIVATE KEY-----\nQQ\n-----END PRIVATE KEY-----",
      stderr: "",
    });
    expect(JSON.stringify(out)).not.toContain("QQ");
  });

  it("redacts secrets in command lines: options, assignments, header text, learned env values", () => {
    learnSecretEnv({ VENDOR_API_TOKEN: "learned-secret-4711", LOG_LEVEL: "debug-level" });
    const out = redactEvidence({
      kind: "command",
      at: "t",
      command: `TOKEN=abc123 DB_PASSWORD='p w' vendor deploy --token tok1 --password=hunter2 --api-key "k e y" --secret s1 --name app1 && curl -H "X-Api-Key: key-9" -H 'Authorization: Bearer abcdefghij' -H "Cookie: sid=42" https://127.0.0.1/?access_token=qq9`,
      exitCode: 0,
      stdout: "using learned-secret-4711 at debug-level",
      stderr: "",
    });
    const text = JSON.stringify(out);
    for (const secret of [
      "abc123",
      "p w",
      "tok1",
      "hunter2",
      "k e y",
      "s1 ",
      "key-9",
      "abcdefghij",
      "sid=42",
      "qq9",
      "learned-secret-4711",
    ])
      expect(text, secret).not.toContain(secret);
    // What is not secret stays: names, other options, non-secret env values.
    for (const kept of [
      "TOKEN=",
      "--token",
      "--name app1",
      "X-Api-Key:",
      "debug-level",
      "vendor deploy",
    ])
      expect(text, kept).toContain(kept);
    expect(looksSecretName("MY_SECRET")).toBe(true);
    expect(looksSecretName("HOME")).toBe(false);
  });
});
