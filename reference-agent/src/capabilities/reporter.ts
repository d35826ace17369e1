import { createHash } from "node:crypto";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { Provider, ProviderProbe } from "../providers/provider.js";
import type { AgentStore } from "../state/store.js";
import { margoProblemType, RetryPolicy, type RetryPolicyOptions } from "../sync/retry-policy.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";
import { Backoff } from "../wfm/backoff.js";
import {
  buildCapabilities,
  type DeploymentType,
  encodeCapabilities,
} from "./capabilities-document.js";
import { type HostFacts, readHostFacts } from "./host-facts.js";

/** What the last report saw of each runtime (AgentView.runtimes, DeviceDriver Info). */
export interface RuntimeProbe extends ProviderProbe {
  type: string;
}

/**
 * Keeps the WFM's copy of this device's capabilities current (item 25): the first exchange after
 * every start is forced (the WFM may have lost or reset its copy), later ones are sent only when
 * the document's bytes changed. The digest of the last body the WFM accepted is kept in the store,
 * so a restart with unchanged facts still forces one PUT but the periodic check does not.
 */
export class CapabilitiesReporter {
  private lastProbes: RuntimeProbe[] = [];
  /**
   * Digest of a body the WFM refused for good (#semantic-error, #invalid-request): the periodic
   * check does not send the same bytes again, only a changed document (or a forced report).
   */
  private refusedDigest: string | undefined;

  constructor(
    private readonly api: WfmApi,
    private readonly store: AgentStore,
    private readonly config: AgentConfig,
    private readonly providers: Provider[],
    private readonly log: AgentLog,
    /** Host facts source; tests replace it to simulate a change. */
    private readonly facts: () => HostFacts = () => readHostFacts(config.stateDir, log),
  ) {}

  /** Runtimes as the last `report`/`probe` found them. */
  runtimes(): RuntimeProbe[] {
    return this.lastProbes.map((p) => ({ ...p }));
  }

  /** Probe every provider now (each failure is "not available" with its reason, never a throw). */
  async probe(): Promise<RuntimeProbe[]> {
    this.lastProbes = await Promise.all(
      this.providers.map(async (p): Promise<RuntimeProbe> => {
        try {
          return { type: p.type, ...(await p.probe()) };
        } catch (e) {
          return { type: p.type, available: false, reason: (e as Error).message };
        }
      }),
    );
    return this.runtimes();
  }

  /** The exact body this device would report now. */
  async body(): Promise<Uint8Array> {
    const probes = await this.probe();
    const available = probes.filter((p) => p.available).map((p) => p.type as DeploymentType);
    if (available.length === 0) {
      this.log({
        level: "error",
        msg: "no deployment runtime is available; capabilities report no supportedDeploymentTypes",
        kind: "capabilities-no-runtime",
        runtimes: probes.map((p) => `${p.type}: ${p.reason ?? "unavailable"}`),
      });
    }
    return encodeCapabilities(buildCapabilities(this.config, this.facts(), available));
  }

  /**
   * PUT the capabilities when forced or changed since the WFM last accepted them. Resolves once
   * the WFM accepted (the digest is then stored); throws WfmRequestError otherwise and the caller
   * retries with its backoff.
   */
  async report(force: boolean): Promise<"sent" | "unchanged"> {
    const body = await this.body();
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const deviceId = this.config.deviceId;
    if (!force && this.store.readCapabilitiesDigest(deviceId) === digest) return "unchanged";
    if (!force && this.refusedDigest === digest) return "unchanged";
    let status: 200 | 201;
    try {
      ({ status } = await this.api.putCapabilities(deviceId, body));
    } catch (e) {
      if (isBodyRefusal(e)) this.refusedDigest = digest;
      throw e;
    }
    this.refusedDigest = undefined;
    this.store.saveCapabilitiesDigest(deviceId, digest);
    this.log({ level: "info", msg: "capabilities reported", status, digest, forced: force });
    return "sent";
  }
}

/**
 * The WFM refused these bytes for good: `#invalid-request` / `#semantic-error`, or (no Margo type)
 * a non-retryable 400/422. Sending the same body again cannot succeed.
 */
export function isBodyRefusal(err: unknown): boolean {
  if (!(err instanceof WfmRequestError) || err.kind !== "http" || err.details.retryable) {
    return false;
  }
  const type = margoProblemType(err);
  if (type !== undefined) return type === "invalid-request" || type === "semantic-error";
  return err.details.status === 400 || err.details.status === 422;
}

/** After a failed capabilities PUT: try again (and hold status delivery meanwhile), or give up. */
export type CapabilitiesRetryDecision =
  | { action: "retry"; delayMs: number; why: string }
  | { action: "give-up"; why: string };

/**
 * How the capabilities loop treats a failed PUT (items 25, 86). Holding matters: status reports
 * wait until the WFM has this device's capabilities (digest 5.7), so giving up also releases
 * them. Decided by problem type, `retryable` and `backoffStrategy`:
 *
 * - network, deferred, `retryable: true`: the retry policy's spacing (Retry-After a floor).
 * - `#gateway-not-found`: the parent gateway has not reported yet; it will, so retry slowly.
 * - `#not-authorized` (or a bare 403 without a Margo type): a policy the operator may lift, and
 *   every status report would be refused alike; retry slowly rather than lose them.
 * - identity failure: the trust refresher may bring the right anchors; retry slowly.
 * - everything else not retryable (`#semantic-error`, `#invalid-request`, an explicit
 *   `backoffStrategy: none`, an answer we cannot use): give up; the agent still syncs, and the
 *   periodic check sends the capabilities again once the document changed.
 */
export class CapabilitiesRetry {
  private readonly policy: RetryPolicy;
  private readonly slow: Backoff;

  constructor(
    opts: Partial<RetryPolicyOptions> & { slowBaseMs?: number; slowCapMs?: number } = {},
  ) {
    const random = opts.random ? { random: opts.random } : {};
    this.policy = new RetryPolicy({
      baseMs: opts.baseMs ?? 1_000,
      capMs: opts.capMs ?? 60_000,
      fixedMs: opts.fixedMs ?? 5_000,
      ...random,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.slow = new Backoff({
      baseMs: opts.slowBaseMs ?? 5_000,
      capMs: opts.slowCapMs ?? 60_000,
      ...random,
    });
  }

  decide(err: unknown): CapabilitiesRetryDecision {
    const decision = this.policy.decide(err);
    if (decision.action === "retry") {
      return { action: "retry", delayMs: decision.delayMs, why: decision.spacing };
    }
    const type = margoProblemType(err);
    const status = err instanceof WfmRequestError ? err.details.status : undefined;
    const kind = err instanceof WfmRequestError ? err.kind : undefined;
    const slow = (why: string) => ({ action: "retry" as const, delayMs: this.slow.next(), why });
    if (type === "gateway-not-found") return slow("parent gateway not registered yet");
    if (type === "not-authorized" || (type === undefined && kind === "http" && status === 403)) {
      return slow("not authorized by the WFM's policy");
    }
    if (kind === "identity") return slow("the WFM failed the identity check");
    return { action: "give-up", why: decision.reason };
  }
}
