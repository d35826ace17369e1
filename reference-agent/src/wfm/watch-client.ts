import { isIP } from "node:net";
import type { ClientReadableStream } from "@grpc/grpc-js";
import type { api } from "@margo/proto";
import type { AgentConfig } from "../config.js";
import { type AgentIdentity, IdentityCheckError } from "../identity/types.js";
import type { AgentLog } from "../log.js";
import { nextAllowedAt, pollingAllowed } from "../sync/schedule.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { peerChainDer } from "./rest-client.js";

export interface ManifestWatchOptions {
  log?: AgentLog;
  /** Reconnect spacing; default base 500 ms, cap 30 s. */
  backoff?: BackoffOptions;
  /**
   * Downtime windows and polling hours (item 87), normally the AgentConfig itself: outside them
   * the stream is closed and nothing is attempted, not even a reconnect. Unset: always open.
   */
  schedule?: Pick<AgentConfig, "downtime" | "polling">;
  /** Clock (epoch ms) for the schedule; tests shift it. Default Date.now. */
  now?: () => number;
}

const MINUTE_MS = 60_000;
/** Two days of minutes: every combination of daily windows repeats within that. */
const MINUTES_SCANNED = 2 * 24 * 60;

/**
 * Epoch ms of the next moment after `now` at which requests are no longer allowed, or undefined
 * if that never happens. Windows are given to the minute ("HH:MM"), so every boundary is a whole
 * UTC minute and scanning minute starts finds the first one exactly.
 */
function nextForbiddenAt(
  now: number,
  schedule: Pick<AgentConfig, "downtime" | "polling">,
): number | undefined {
  if (schedule.downtime.length === 0 && schedule.polling.hours === undefined) return undefined;
  let t = Math.floor(now / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  for (let i = 0; i <= MINUTES_SCANNED; i++, t += MINUTE_MS) {
    if (!pollingAllowed(t, schedule)) return t;
  }
  return undefined;
}

type WatchClient = api.WorkloadManagementServiceClient;
type WatchStream = ClientReadableStream<api.WatchManifestResponse>;

/**
 * SNI for an address given as an IP literal: grpc-js would put the IP in SNI, which RFC 6066
 * forbids (Node warns, DEP0123). The name means nothing to us; the SPIFFE ID identifies the WFM.
 */
const SNI_FOR_IP = "margo-wfm";

/**
 * A WatchManifest stream to the WFM's gRPC binding, beside polling: it only tells the sync loop
 * that a new manifest exists (`onChange(etag)`), the loop still fetches and verifies it over REST,
 * so a lost or lying stream can delay nothing beyond the next poll.
 *
 * The stream is opened without If-None-Match on purpose: the WFM then answers at once with the
 * current revision, which proves the stream (and the server's identity) before `up` turns true;
 * `onChange` fires only when that revision differs from the last one seen. Ends and failures
 * reconnect with full-jitter backoff; a changed identity (new anchors, renewed SVID) rebuilds
 * the channel. grpc-js is loaded on the first start, so an agent without watch never loads it.
 *
 * Downtime means no requests and no retries (item 87): at a window's start the stream and channel
 * are closed, and nothing is opened or retried before `nextAllowedAt`; the same holds outside the
 * polling hours, which polling also respects, so the watch never talks while polling may not.
 */
export class ManifestWatch {
  private running = false;
  private client: WatchClient | undefined;
  private call: WatchStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the allowed period ends, to close the stream for the downtime. */
  private windowTimer: NodeJS.Timeout | undefined;
  private isUp = false;
  private lastEtag: string | undefined;
  private onChangeCb: ((etag: string) => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly backoff: Backoff;
  /** Incremented on every (re)connect so events of an abandoned call are ignored. */
  private generation = 0;
  /**
   * The last identity refusal of our checkServerIdentity: grpc-js reports only UNAVAILABLE with a
   * flattened message, so the rule is kept here to say why in the log.
   */
  private lastRefusal: IdentityCheckError | undefined;

  constructor(
    private readonly address: string,
    private readonly identity: AgentIdentity,
    private readonly opts: ManifestWatchOptions = {},
  ) {
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 500, capMs: 30_000 });
  }

  /** Open the stream (asynchronously) and keep it open until stop(). */
  start(onChange: (etag: string) => void): void {
    if (this.running) return;
    this.running = true;
    this.onChangeCb = onChange;
    this.unsubscribe = this.identity.onChange(() => {
      this.log("info", "identity changed; reopening the watch");
      this.closeClient();
      this.schedule(0);
    });
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    this.closeClient();
  }

  /** True while a stream is open and has delivered the current revision. */
  get up(): boolean {
    return this.isUp;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Every open and every retry passes here, so none of them happens in downtime.
      const now = this.now();
      const allowedAt = this.opts.schedule ? nextAllowedAt(now, this.opts.schedule) : now;
      if (allowedAt > now) {
        this.log("info", "watch paused (downtime or outside polling hours)", {
          until: new Date(allowedAt).toISOString(),
        });
        this.schedule(allowedAt - now);
        return;
      }
      this.armWindowEnd(now);
      this.open().catch((e) => {
        this.log("warn", "watch could not be opened", { error: (e as Error).message });
        this.retry();
      });
    }, delayMs);
  }

  /** Close the stream when the allowed period that holds `now` ends; the gate then defers. */
  private armWindowEnd(now: number): void {
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    const schedule = this.opts.schedule;
    if (!schedule) return;
    const endsAt = nextForbiddenAt(now, schedule);
    if (endsAt === undefined) return;
    this.windowTimer = setTimeout(() => {
      this.windowTimer = undefined;
      if (!this.running) return;
      const t = this.now();
      // A timer may fire a little early; only a real boundary closes the stream.
      if (t < endsAt) {
        this.armWindowEnd(t);
        return;
      }
      this.log("info", "watch closed for downtime or the end of the polling hours");
      this.closeClient();
      this.backoff.reset();
      this.schedule(0);
    }, endsAt - now);
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private retry(): void {
    this.isUp = false;
    this.schedule(this.backoff.next());
  }

  private async open(): Promise<void> {
    if (!this.running) return;
    const gen = ++this.generation;
    const client = this.client ?? (await this.buildClient());
    if (!this.running || gen !== this.generation) return;
    this.client = client;
    const call = client.watchManifest({});
    this.call = call;
    call.on("data", (msg: api.WatchManifestResponse) => {
      if (gen !== this.generation) return;
      if (!this.isUp) {
        this.isUp = true;
        this.backoff.reset();
        this.log("info", "watch up", { address: this.address });
      }
      if (msg.etag !== this.lastEtag) {
        this.lastEtag = msg.etag;
        try {
          this.onChangeCb?.(msg.etag);
        } catch (e) {
          this.log("error", "watch listener failed", { error: (e as Error).message });
        }
      }
    });
    const ended = (why: string, extra: Record<string, unknown> = {}) => {
      if (gen !== this.generation) return;
      this.generation++;
      this.call = undefined;
      const wasUp = this.isUp;
      this.isUp = false;
      if (!this.running) return;
      this.log(wasUp ? "info" : "warn", `watch ${why}; reconnecting`, extra);
      this.retry();
    };
    call.on("error", (e: Error & { code?: number; details?: string }) => {
      const refusal = this.lastRefusal;
      this.lastRefusal = undefined;
      ended("failed", {
        code: e.code,
        error: refusal?.message ?? e.details ?? e.message,
        ...(refusal ? { kind: "wfm-identity-mismatch", rule: refusal.rule } : {}),
      });
    });
    call.on("end", () => ended("ended by the server"));
  }

  private async buildClient(): Promise<WatchClient> {
    // The one generated service module, not the package index, which would also load the admin
    // and driver services (~300 KB of code) into an agent that only watches.
    const [grpc, wm] = await Promise.all([
      import("@grpc/grpc-js"),
      import("@margo/proto/services/workload-management"),
    ]);
    const tls = this.identity.tls();
    const identity = this.identity;
    const creds = grpc.credentials.createSsl(
      Buffer.from(tls.anchorsPem),
      Buffer.from(tls.keyPem),
      Buffer.from(tls.certChainPem),
      {
        // Replaces the hostname check: the address is routing only (digest 5.3, item 8).
        checkServerIdentity: (_host, cert) => {
          try {
            identity.verifyServer(peerChainDer(cert));
            return undefined;
          } catch (e) {
            if (e instanceof IdentityCheckError) this.lastRefusal = e;
            return e as Error;
          }
        },
      },
    );
    const host = hostOf(this.address);
    const options = {
      // A channel of its own: with grpc-js's shared pool the TCP connection outlives close() by
      // seconds, and downtime means no connection at all, not just no calls.
      "grpc.use_local_subchannel_pool": 1,
      ...(isIP(host) ? { "grpc.ssl_target_name_override": SNI_FOR_IP } : {}),
    };
    return new wm.WorkloadManagementServiceClient(this.address, creds, options);
  }

  private closeClient(): void {
    this.generation++;
    const call = this.call;
    this.call = undefined;
    this.isUp = false;
    call?.cancel();
    this.client?.close();
    this.client = undefined;
  }

  private log(level: "info" | "warn" | "error", msg: string, extra: Record<string, unknown> = {}) {
    this.opts.log?.({ level, msg, ...extra });
  }
}

/** Host part of `host:port` or `[v6]:port`. */
function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(address);
  if (v6) return v6[1] ?? "";
  const i = address.lastIndexOf(":");
  return i < 0 ? address : address.slice(0, i);
}
