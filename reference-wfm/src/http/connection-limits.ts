import type { ServerOptions } from "node:https";
import type { Server } from "node:net";
import type { ManagementLimits } from "../config.js";
import type { EdgeLog } from "./log.js";

/** Least time between two "connections dropped at the cap" log lines, so a flood cannot flood the log. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Caps a listener's sockets and reports what the cap turned away, at most once per interval with
 * the count since the last report: every TLS listener of the WFM needs both, and a flood that
 * hits the cap must not also flood the log.
 */
export function capConnections(
  server: Server,
  maxConnections: number,
  log: EdgeLog,
  event: string,
): void {
  server.maxConnections = maxConnections;
  let dropped = 0;
  let lastReport = Number.NEGATIVE_INFINITY;
  server.on("drop", () => {
    dropped++;
    const t = performance.now();
    if (t - lastReport < DROP_LOG_INTERVAL_MS) return;
    lastReport = t;
    log(event, { count: dropped, maxConnections });
    dropped = 0;
  });
}

/** How often Node sweeps for headers/request timeouts at most; its 30 s default would let a
 * 10 s limit stretch to 40 s. */
const MAX_TIMEOUT_SWEEP_MS = 1000;

/** Room between the longest body our reader allows and Node's own request cut-off. */
const BACKSTOP_MARGIN_MS = 60_000;

/**
 * The longest a request body can take under the reader's rules: the grace, then `maxBodyBytes`
 * at exactly the least rate, then at most one idle gap. 0 when the rate rule is off (unbounded).
 */
export function longestBodyMs(limits: ManagementLimits, maxBodyBytes: number): number {
  if (limits.minBodyBytesPerSecond <= 0) return 0;
  return (
    limits.bodyGraceMs +
    Math.ceil((maxBodyBytes * 1000) / limits.minBodyBytesPerSecond) +
    limits.bodyIdleTimeoutMs
  );
}

/**
 * The listener options that bound how long a connection may take to handshake and to send a
 * request, shared by the Management Interface and the MIS trust listener: the latter needs no
 * client certificate, so it is the easier one to pin with idle or trickling sockets.
 *
 * Bodies are bounded by our own reader (silence, least average rate), which answers 408
 * problem+json. Node's request timeout is only a backstop, set far above anything the reader
 * allows, for bodies no handler reads (a GET carrying one): as a hard cap it cut valid slow
 * uploads with a raw 408. `maxBodyBytes` is 0 for a listener that reads no bodies.
 */
export function connectionLimitOptions(
  limits: ManagementLimits,
  maxBodyBytes: number,
): Pick<
  ServerOptions,
  "handshakeTimeout" | "headersTimeout" | "requestTimeout" | "connectionsCheckingInterval"
> {
  const headersTimeout = limits.headersTimeoutMs;
  const body = longestBodyMs(limits, maxBodyBytes);
  // A listener without body intake has nothing slow to wait for after the headers.
  const backstop =
    maxBodyBytes === 0 ? limits.bodyIdleTimeoutMs : body > 0 ? body + BACKSTOP_MARGIN_MS : 0;
  return {
    handshakeTimeout: limits.handshakeTimeoutMs,
    headersTimeout,
    // Node measures it from the first byte of the request, headers included; 0 turns it off.
    requestTimeout: backstop > 0 ? headersTimeout + backstop : 0,
    connectionsCheckingInterval: Math.max(
      10,
      Math.min(MAX_TIMEOUT_SWEEP_MS, Math.floor(headersTimeout / 4)),
    ),
  };
}
