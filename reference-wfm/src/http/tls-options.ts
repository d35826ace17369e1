import { constants } from "node:crypto";
import type { SecureContextOptions } from "node:tls";
import type { TlsMaterial } from "../identity/types.js";
import { mutant } from "../mutants.js";

/**
 * TLS 1.3 ciphers first, then the TLS 1.2 AEAD suites RFC 9325 recommends: 1.2 exists only as a
 * fallback (item 2), and never with CBC or static RSA key exchange.
 */
const CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * The secure-context half of a WFM listener, rebuilt from the identity on every rotation (Node's
 * setSecureContext replaces the whole context, so version floor and ciphers must come along).
 * Session tickets are off so every connection runs a full handshake and the client SVID is
 * checked each time: resumption must not extend authentication (item 13).
 */
export function secureContextOptions(
  material: TlsMaterial,
  opts: { withClientCa: boolean },
): SecureContextOptions {
  return {
    cert: material.certChainPem,
    key: material.keyPem,
    ...(opts.withClientCa ? { ca: material.anchorsPem } : {}),
    minVersion: "TLSv1.2",
    maxVersion: mutant("tls12-default") ? "TLSv1.2" : "TLSv1.3",
    ciphers: CIPHERS,
    honorCipherOrder: true,
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
}
