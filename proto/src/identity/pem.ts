import { createHash } from "node:crypto";

/**
 * PEM <-> DER and certificate fingerprints, kept apart from the minting code in x509.ts: a
 * verifier (the device agent) needs these on every start, and x509.ts loads @peculiar/x509 and
 * reflect-metadata, which a process that never mints should not pay for in memory.
 */

/** DER to PEM with 64-column lines (RFC 7468). */
export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Every `label` block of a PEM text as DER, in order (a chain file gives leaf first). */
export function pemToDer(pem: string, label = "CERTIFICATE"): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...pem.matchAll(re)].map((m) => Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64"));
}

/** SHA-256 of a certificate's DER, lowercase hex: how anchors are named in files and responses. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}
