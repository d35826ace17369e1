import type { ServerOptions } from "node:https";
import type { ManagementLimits } from "../config.js";

/** How often Node sweeps for headers/request timeouts at most; its 30 s default would let a
 * 10 s limit stretch to 40 s. */
const MAX_TIMEOUT_SWEEP_MS = 1000;

/**
 * The listener options that bound how long a connection may take to handshake and to send a
 * request, shared by the Management Interface and the MIS trust listener: the latter needs no
 * client certificate, so it is the easier one to pin with idle or trickling sockets.
 */
export function connectionLimitOptions(
  limits: ManagementLimits,
): Pick<
  ServerOptions,
  "handshakeTimeout" | "headersTimeout" | "requestTimeout" | "connectionsCheckingInterval"
> {
  // Node refuses a headers timeout above the request timeout; the request bound includes headers.
  const headersTimeout =
    limits.requestTimeoutMs > 0
      ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs)
      : limits.headersTimeoutMs;
  return {
    handshakeTimeout: limits.handshakeTimeoutMs,
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(
      10,
      Math.min(MAX_TIMEOUT_SWEEP_MS, Math.floor(headersTimeout / 4)),
    ),
  };
}
