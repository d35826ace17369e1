/**
 * What the WFM suite's own checks need beyond the shared WfmCtx contract: a way to admit spare
 * clients (checks that retire one or exhaust its rate limit must not spoil the shared clients)
 * and the trust endpoints of item 17. Kept beside the context (registered per ctx) rather than in
 * it, so the contract other checks build on stays as the lead wrote it.
 */
import type { Credentials, WfmClient, WfmCtx, WireClient } from "../context.js";

export interface WfmSuiteExtras {
  /**
   * Admit one more client through the configured provisionCommand (id `conf-<run>-<suffix>`);
   * undefined when clients are pre-provisioned folders.
   */
  admitClient?(suffix: string): Promise<WfmClient>;
  /**
   * A spare client admitted, shown to be served, then retired with retireCommand (prepared in
   * the background when the suite opens; memoized). Undefined without both commands.
   */
  retiredClient?(): Promise<RetiredClient>;
  /** An in-domain SVID valid until `notAfter` (needs wfm.ca). */
  shortLivedSvid?(spiffeId: string, notAfter: Date): Promise<Credentials>;
  /** The WFM trust domain's anchors (DER), as configured. */
  anchors: readonly Buffer[];
  /** The configured trust endpoints (item 17). */
  bundleUrl?: string;
  discoveryUrl?: string;
  /**
   * A client without a client certificate for an HTTPS origin outside the Management Interface
   * (trust endpoints): the server must chain to the trust anchors and present an SVID of the
   * trust domain, or else pass the ordinary host-name check.
   */
  connectOrigin(origin: string, actor: string): WireClient;
}

export interface RetiredClient {
  client: WfmClient;
  /** HTTP status the client got before it was retired (200). */
  servedBefore: number;
}

const registry = new WeakMap<WfmCtx, WfmSuiteExtras>();

export function registerExtras(ctx: WfmCtx, extras: WfmSuiteExtras): void {
  registry.set(ctx, extras);
}

/** The extras of a ctx the WFM suite opened; a ctx built elsewhere has none (checks skip). */
export function extrasOf(ctx: WfmCtx): WfmSuiteExtras | undefined {
  return registry.get(ctx);
}
