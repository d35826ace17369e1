/**
 * Negative checks expect the WFM to refuse; a refusal may come as a failed handshake, a reset
 * after it (TLS 1.3 servers reject a client certificate after the client thinks it is done) or a
 * 4xx answer. This turns one attempt into data the check can judge.
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

export async function attempt(t: CheckTools, wire: WireClient, req: WireRequest): Promise<Attempt> {
  try {
    return { kind: "response", res: await wire.request(t, req) };
  } catch (e) {
    if (e instanceof WireTransportError) {
      if (e.code === "WFM_IDENTITY")
        throw new WfmNotAuthenticated(`the WFM's own certificate was refused: ${e.message}`);
      if (e.code === "ABORT_ERR" || t.signal.aborted) throw e;
      return { kind: "refused", error: e };
    }
    throw e;
  }
}

/** Refused = no response or a 4xx; anything else means the request was served. */
export function isRefusal(a: Attempt): boolean {
  return a.kind === "refused" || (a.res.status >= 400 && a.res.status < 500);
}

export function describe(a: Attempt): string {
  if (a.kind === "refused") return `connection refused at ${a.error.stage} (${a.error.code})`;
  const body = a.res.body.subarray(0, 160).toString("utf8");
  return `HTTP ${a.res.status}${body ? `: ${body}` : ""}`;
}
