/**
 * A bare TLS handshake that accepts whatever the server presents, to see the certificate list it
 * actually sent (item 12: leaf plus the intermediates needed). The wire client cannot show that:
 * Node completes the chain from the configured anchors before handing it over.
 */
import { connect, type PeerCertificate } from "node:tls";
import type { Credentials } from "../context.js";
import { peerChainOf, WireTransportError } from "./wire-client.js";

export interface TlsProbeResult {
  protocol: string | null;
  /** Certificates as presented, leaf first (no anchor added by the verifier). */
  presented: Buffer[];
}

export function probeTls(
  url: string,
  creds: Credentials | null,
  signal: AbortSignal,
  timeoutMs = 10_000,
): Promise<TlsProbeResult> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: u.hostname,
      port: Number(u.port || 443),
      // Deliberately unverified: this probe only reads what was sent; the checks verify it.
      rejectUnauthorized: false,
      ...(creds ? { cert: creds.chainPem, key: creds.keyPem } : {}),
      ...(/^[\d.]+$|:/.test(u.hostname) ? {} : { servername: u.hostname }),
    });
    const timer = setTimeout(() => socket.destroy(new Error("TLS probe timed out")), timeoutMs);
    const onAbort = () => socket.destroy(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    };
    socket.once("secureConnect", () => {
      const peer = socket.getPeerCertificate(true) as PeerCertificate | undefined;
      const result = { protocol: socket.getProtocol(), presented: peerChainOf(peer) };
      done();
      socket.end();
      resolve(result);
    });
    socket.once("error", (e: Error & { code?: string }) => {
      done();
      reject(new WireTransportError("handshake", e.code ?? e.name, e.message));
    });
  });
}
