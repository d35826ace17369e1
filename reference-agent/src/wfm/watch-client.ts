import { isIP } from "node:net";
import type { ClientReadableStream } from "@grpc/grpc-js";
import type { api } from "@margo/proto";
import { type AgentIdentity, IdentityCheckError } from "../identity/types.js";
import type { AgentLog } from "../log.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { peerChainDer } from "./rest-client.js";

export interface ManifestWatchOptions {
  log?: AgentLog;
  /** Reconnect spacing; default base 500 ms, cap 30 s. */
  backoff?: BackoffOptions;
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
 */
export class ManifestWatch {
  private running = false;
  private client: WatchClient | undefined;
  private call: WatchStream | undefined;
  private timer: NodeJS.Timeout | undefined;
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
      this.open().catch((e) => {
        this.log("warn", "watch could not be opened", { error: (e as Error).message });
        this.retry();
      });
    }, delayMs);
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
    const [grpc, proto] = await Promise.all([import("@grpc/grpc-js"), import("@margo/proto")]);
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
    const options = isIP(host) ? { "grpc.ssl_target_name_override": SNI_FOR_IP } : {};
    return new proto.api.WorkloadManagementServiceClient(this.address, creds, options);
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
