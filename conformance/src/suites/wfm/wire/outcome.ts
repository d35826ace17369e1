/**
 * Negative checks expect the WFM to refuse; a refusal may come as a failed handshake (a TLS
 * alert), a reset after the TCP connection was made (TLS 1.3 servers reject a client certificate
 * after the client thinks it is done) or a 4xx answer. This turns one attempt into data the check
 * can judge. Anything else that gives no response (nobody listening, a name that does not resolve,
 * a timeout, the harness failing to build its TLS context) is no verdict: it throws, and the check
 * errors instead of passing because a WFM that is down "refuses" everything.
 */
import type { CheckTools } from "../../../core/types.js";
import type { WireClient, WireRequest, WireResponse } from "../context.js";
import { WireTransportError } from "./wire-client.js";

export type Attempt =
  | { kind: "refused"; error: WireTransportError }
  | { kind: "response"; res: WireResponse };

/** The harness refused the WFM's own certificate: no verdict on the request is possible. */
export class WfmNotAuthenticated extends Error {
  override readonly name = "WfmNotAuthenticated";
}

/** No response, and not because the WFM refused: the WFM is unreachable or the harness broke. */
export class NoVerdictTransportError extends Error {
  override readonly name = "NoVerdictTransportError";
  constructor(
    message: string,
    readonly transport: WireTransportError,
  ) {
    super(message);
  }
}

/** The positive control (same request, an admitted client) was not served: the negative result would mean nothing. */
export class ControlNotServed extends Error {
  override readonly name = "ControlNotServed";
}

/** A connection reset or a broken pipe once connected: the WFM hung up on us. */
const HANG_UP = new Set(["ECONNRESET", "EPIPE"]);

/**
 * Whether this transport failure is the WFM refusing: a TLS alert it sent (OpenSSL reports it as
 * ERR_SSL_..._ALERT_...), or a reset / broken pipe / end of stream after the TCP connection was
 * made. A failure with no TCP connection or before anything was sent is never a refusal.
 */
export function isWfmRefusal(e: WireTransportError): boolean {
  if (e.stage === "setup" || !e.connected) return false;
  if (HANG_UP.has(e.code)) return true;
  // Node reports a received alert either as its OpenSSL reason code or as EPROTO whose message
  // carries OpenSSL's "... alert ... SSL alert number N".
  if (e.code === "EPROTO") return /SSL alert number \d+/.test(e.message);
  return /^ERR_SSL_.*(ALERT|UNEXPECTED_EOF)/.test(e.code);
}

export async function attempt(t: CheckTools, wire: WireClient, req: WireRequest): Promise<Attempt> {
  try {
    return { kind: "response", res: await wire.request(t, req) };
  } catch (e) {
    if (e instanceof WireTransportError) {
      if (e.code === "WFM_IDENTITY")
        throw new WfmNotAuthenticated(`the WFM's own certificate was refused: ${e.message}`);
      if (e.code === "ABORT_ERR" || t.signal.aborted) throw e;
      if (isWfmRefusal(e)) return { kind: "refused", error: e };
      throw new NoVerdictTransportError(
        `${wire.actor}: ${req.method} ${req.path} got no response and the WFM did not refuse it (${e.stage}, ${e.code}${e.connected ? "" : ", no TCP connection"}): ${e.message}; not counted as a refusal`,
        e,
      );
    }
    throw e;
  }
}

/**
 * Positive control just before a negative request: the same request on `control` (an admitted
 * client; the same TLS options unless the caller changed them on purpose) on a fresh connection
 * must get an HTTP response, else the negative result says nothing about the one thing the
 * check changed. Throws ControlNotServed (an error, never a pass).
 */
export async function expectServed(
  t: CheckTools,
  control: WireClient,
  req: WireRequest,
  label: string,
): Promise<WireResponse> {
  const a = await attempt(t, control, { ...req, fresh: true });
  if (a.kind !== "response")
    throw new ControlNotServed(
      `positive control failed: ${label} (${control.actor}: ${req.method} ${req.path}) was not served: ${describe(a)}; the negative result would mean nothing`,
    );
  t.note(`control ${label}: ${req.method} ${req.path} -> HTTP ${a.res.status}`);
  return a.res;
}

/** Refused = the WFM refused the connection or answered 4xx; anything else means the request was served. */
export function isRefusal(a: Attempt): boolean {
  return a.kind === "refused" || (a.res.status >= 400 && a.res.status < 500);
}

export function describe(a: Attempt): string {
  if (a.kind === "refused") return `refused at ${a.error.stage} (${a.error.code})`;
  const body = a.res.body.subarray(0, 160).toString("utf8");
  return `HTTP ${a.res.status}${body ? `: ${body}` : ""}`;
}
