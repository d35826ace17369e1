import { describe, expect, it } from "vitest";
import { isRfc9325Tls12Suite } from "./transport.js";

describe("isRfc9325Tls12Suite", () => {
  it("accepts (EC)DHE with AES-GCM or ChaCha20-Poly1305", () => {
    for (const s of [
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    ])
      expect(isRfc9325Tls12Suite(s), s).toBe(true);
  });
  it("refuses static RSA, CBC and non-AEAD suites", () => {
    for (const s of [
      "TLS_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
      "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
      "",
    ])
      expect(isRfc9325Tls12Suite(s), s).toBe(false);
  });
});
