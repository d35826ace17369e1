import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:https";
import {
  anchorsFromBundleJson,
  BundleError,
  certificateFingerprint,
} from "@margo/proto/identity/light";
import { decodeDiscoveryDocument } from "@margo/proto/wire";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import type { AgentStore } from "../state/store.js";
import { nextAllowedAt } from "../sync/schedule.js";
import { Backoff } from "../wfm/backoff.js";
import { peerChainDer } from "../wfm/rest-client.js";
import type { FileAgentIdentity } from "./agent-identity.js";
import type { BundleRefreshOutcome } from "./types.js";

export interface BundleRefresherOptions {
  /** Per request (discovery, bundle); default 15 s. */
  requestTimeoutMs?: number;
  /** Retry spacing after an unreachable or refused source; capped by the refresh period. */
  retryBaseMs?: number;
  /** Clock (epoch ms) for the downtime and polling-hours gate; tests shift it. Default Date.now. */
  now?: () => number;
}

type Rejection = Extract<BundleRefreshOutcome, { result: "rejected" }>;

/** A trust document larger than this is not a bundle; refuse it rather than buffer it. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** setTimeout's ceiling (2^31-1 ms); a larger hint is simply re-armed. */
const MAX_TIMER_MS = 2_147_483_647;
/** For configs built without normaliseConfig (tests); see AgentConfig.trust.minRefreshSeconds. */
const DEFAULT_MIN_REFRESH_SECONDS = 5;

class RefreshRejected extends Error {
  constructor(readonly outcome: Rejection) {
    super(outcome.message);
  }
}

/** The attempt's refresher was stopped; thrown out of the request so nothing after it runs. */
class RefreshAborted extends Error {
  constructor() {
    super("trust bundle refresh aborted: the refresher was stopped");
    this.name = "RefreshAborted";
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new RefreshAborted();
}

function reject(kind: Rejection["kind"], message: string): never {
  throw new RefreshRejected({ result: "rejected", kind, message });
}

/**
 * Keeps the trust bundle current (items 17-24). The source is `config.trust.bundleUrl`, or the
 * `trustBundleUri` of the discovery document at `config.trust.discoveryUrl`. Both are fetched
 * over server-authenticated TLS against the anchors the agent already holds: the MIS must present
 * an SVID chaining to them (no TOFU, item 18) that carries exactly `config.trust.serverSpiffeId`,
 * by default the WFM's own ID. "Any SVID of the domain" is not enough: client SVIDs carry
 * serverAuth too, and since an accepted bundle replaces the anchors (item 22), another device
 * could otherwise swap in its own CA. Any rejection keeps the current anchors, is recorded in the
 * store and logged. A due refresh always goes to the network; If-None-Match only lets the server
 * answer 304 (item 23). Scheduled refreshes and their retries wait out downtime and the time
 * outside the polling hours (item 87); refreshNow() called directly is not gated.
 *
 * Lifecycle: `stop()` clears the timer, aborts the attempt in flight (its request is destroyed)
 * and resolves only once that attempt settled; an aborted attempt touches neither the store nor
 * the anchors and arms nothing. The owner awaits `stop()` before closing the store, so nothing of
 * a closed agent reaches the store or the network (a late `recordError` on a closed SQLite
 * store used to crash the process after a DeviceDriver Configure).
 */
export class BundleRefresher {
  private timer: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  private inFlight: { promise: Promise<BundleRefreshOutcome>; abort: AbortController } | undefined;
  private running = false;
  private readonly retry: Backoff;

  constructor(
    private readonly config: AgentConfig,
    private readonly identity: FileAgentIdentity,
    private readonly store: AgentStore,
    private readonly log: AgentLog,
    private readonly opts: BundleRefresherOptions = {},
  ) {
    this.retry = new Backoff({
      baseMs: opts.retryBaseMs ?? 2_000,
      capMs: this.periodMs(),
    });
  }

  /** Whether a source is configured at all (otherwise the provisioned bundle stays in use). */
  get configured(): boolean {
    return (
      this.config.trust.bundleUrl !== undefined || this.config.trust.discoveryUrl !== undefined
    );
  }

  /** Refresh now, then on schedule. No-op without a configured source. */
  start(): void {
    if (this.running || !this.configured) return;
    this.running = true;
    this.arm(0);
  }

  /**
   * Stop scheduling and abort the attempt in flight; resolves once it settled, so the caller may
   * close the store right after. start() may follow (DeviceDriver Reset restarts the refresher).
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = undefined;
    const current = this.inFlight;
    if (!current) return;
    current.abort.abort();
    await current.promise.catch(() => undefined);
  }

  /** Epoch ms of the next scheduled refresh; undefined when stopped or not configured. */
  nextRefreshAt(): number | undefined {
    return this.dueAt;
  }

  /**
   * Fetch and judge the bundle once. Concurrent callers share one attempt. When running, the next
   * refresh is scheduled from the outcome (the hint of the bundle in use, or the configured
   * period; sooner after an unreachable source).
   */
  refreshNow(): Promise<BundleRefreshOutcome> {
    // An aborted attempt still settling is not shared: a restarted refresher needs a live one.
    if (this.inFlight && !this.inFlight.abort.signal.aborted) return this.inFlight.promise;
    const abort = new AbortController();
    const entry = {
      abort,
      promise: this.attempt(abort.signal).finally(() => {
        if (this.inFlight === entry) this.inFlight = undefined;
      }),
    };
    this.inFlight = entry;
    return entry.promise;
  }

  private async attempt(signal: AbortSignal): Promise<BundleRefreshOutcome> {
    let outcome: BundleRefreshOutcome;
    try {
      outcome = await this.fetchAndJudge(signal);
    } catch (e) {
      outcome =
        signal.aborted || e instanceof RefreshAborted
          ? { result: "aborted" }
          : e instanceof RefreshRejected
            ? e.outcome
            : { result: "rejected", kind: "trust-bundle-unreachable", message: String(e) };
    }
    // Stopped meanwhile: the store may already be closed, and a restarted refresher arms itself.
    if (signal.aborted || outcome.result === "aborted") return { result: "aborted" };
    if (outcome.result === "rejected") {
      this.store.recordError(outcome.kind, outcome.message);
      this.log({
        level: "warn",
        msg: "trust bundle refresh rejected",
        kind: outcome.kind,
        error: outcome.message,
      });
    } else if (outcome.result === "accepted") {
      this.log({
        level: "info",
        msg: "trust bundle refreshed",
        anchors: outcome.anchors,
        sequence: outcome.sequence,
      });
    }
    if (this.running) {
      if (outcome.result === "rejected" && outcome.kind === "trust-bundle-unreachable") {
        this.arm(Math.max(this.floorMs(), this.retry.next()));
      } else {
        this.retry.reset();
        this.arm(this.periodMs());
      }
    }
    return outcome;
  }

  private async fetchAndJudge(signal: AbortSignal): Promise<BundleRefreshOutcome> {
    const current = this.identity.trustState();
    const bundleUrl = this.config.trust.bundleUrl ?? (await this.discover(signal));
    if (bundleUrl === undefined) return { result: "unchanged" };
    if (!bundleUrl.startsWith("https://"))
      reject("trust-bundle-not-https", `bundle URL ${bundleUrl} is not https (item 19)`);
    const res = await this.get(bundleUrl, signal, current.etag);
    if (res.status === 304) return { result: "unchanged" };
    if (res.status !== 200)
      reject("trust-bundle-unreachable", `GET ${bundleUrl}: status ${res.status}`);
    let parsed: ReturnType<typeof anchorsFromBundleJson>;
    try {
      parsed = anchorsFromBundleJson(res.body);
    } catch (e) {
      const rule = e instanceof BundleError ? e.rule : "";
      // Zero X.509 anchors (possibly beside jwt-svid keys) is its own case: item 21.
      if (rule === "wire.no-x509-anchor" || rule === "bundle.no-x509-anchor")
        reject(
          "trust-bundle-empty",
          `${bundleUrl}: ${(e as Error).message} (item 21, old anchors kept)`,
        );
      reject("trust-bundle-invalid", `${bundleUrl}: ${(e as Error).message}`);
    }
    const sequence = parsed.bundle.spiffeSequence;
    if (current.sequence !== undefined && sequence === undefined)
      // Dropping the member must not be a way around the ordering check.
      reject(
        "trust-bundle-regressed",
        `${bundleUrl}: no spiffe_sequence, but the bundle in use has ${current.sequence} (item 23)`,
      );
    if (sequence !== undefined && current.sequence !== undefined && sequence < current.sequence)
      reject(
        "trust-bundle-regressed",
        `${bundleUrl}: spiffe_sequence ${sequence} is below the ${current.sequence} in use (item 23)`,
      );
    const hint = parsed.bundle.spiffeRefreshHint;
    const etag = headerText(res.headers.etag);
    const fingerprints = parsed.anchors.map((d) => certificateFingerprint(d)).sort();
    const same =
      sequence === current.sequence &&
      fingerprints.join() === [...current.fingerprints].sort().join();
    if (same) return { result: "unchanged" };
    // Replacing writes the store: never for a refresher stopped while the body arrived.
    throwIfAborted(signal);
    const state = this.identity.replaceBundle(res.body, {
      ...(sequence !== undefined ? { sequence } : {}),
      ...(hint !== undefined ? { refreshHintSeconds: Number(hint) } : {}),
      ...(etag !== undefined ? { etag } : {}),
    });
    return {
      result: "accepted",
      ...(sequence !== undefined ? { sequence } : {}),
      anchors: state.anchors,
    };
  }

  /** The bundle URL named by the discovery document; rejections for items 19, 20 and 24. */
  private async discover(signal: AbortSignal): Promise<string | undefined> {
    const url = this.config.trust.discoveryUrl;
    if (url === undefined) return undefined;
    const res = await this.get(url, signal);
    if (res.status !== 200) reject("trust-bundle-unreachable", `GET ${url}: status ${res.status}`);
    const decoded = decodeDiscoveryDocument(res.body);
    if (!decoded.value) {
      const errors = decoded.problems.filter((p) => p.severity === "error");
      if (errors.some((p) => p.rule === "wire.https"))
        reject("trust-bundle-not-https", `${url}: trustBundleUri is not an https URL (item 19)`);
      reject(
        "trust-bundle-invalid",
        `${url}: ${errors.map((p) => `${p.pointer} ${p.message}`).join("; ") || "not a discovery document"}`,
      );
    }
    const doc = decoded.value;
    if (doc.trustDomain !== this.identity.trustDomain)
      reject(
        "trust-domain-mismatch",
        `${url} describes trust domain ${doc.trustDomain}, but this agent's SVID is in ${this.identity.trustDomain}: a configuration error (item 24)`,
      );
    return doc.trustBundleUri;
  }

  /**
   * The SPIFFE ID the trust endpoint must present. A WFM client ID is refused even when configured
   * (a config built without normaliseConfig): it would let one device feed anchors to another.
   */
  private serverId(): string {
    const id = this.config.trust.serverSpiffeId ?? this.identity.expectedWfmId;
    if (/\/client(\/|$)/.test(id))
      reject(
        "trust-bundle-invalid",
        `trust.serverSpiffeId ${id} is a WFM client ID; a client never serves the trust bundle`,
      );
    return id;
  }

  /**
   * GET over server-only TLS. The server must present an SVID chaining to the current anchors
   * with exactly serverId() (never anything else, and never on first use). An abort of `signal`
   * destroys the request and rejects at once with RefreshAborted, whatever the socket does.
   */
  private get(
    url: string,
    signal: AbortSignal,
    ifNoneMatch?: string,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    throwIfAborted(signal);
    const u = new URL(url);
    if (u.protocol !== "https:") reject("trust-bundle-not-https", `${url} is not https (item 19)`);
    const timeoutMs = this.opts.requestTimeoutMs ?? 15_000;
    const identity = this.identity;
    const expectedId = this.serverId();
    return new Promise((resolveOnce, failOnce) => {
      let settled = false;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const resolve = (v: { status: number; headers: IncomingHttpHeaders; body: Buffer }) => {
        if (settled) return;
        finish();
        resolveOnce(v);
      };
      const fail = (e: Error) => {
        if (settled) return;
        finish();
        failOnce(e);
      };
      const onAbort = () => {
        fail(new RefreshAborted());
        r.destroy();
      };
      const r = request(u, {
        method: "GET",
        agent: false,
        ca: identity.tls().anchorsPem,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        headers: {
          accept: "application/json",
          ...(ifNoneMatch !== undefined ? { "if-none-match": ifNoneMatch } : {}),
        },
        checkServerIdentity: (_host, cert) => {
          try {
            identity.verifyServer(peerChainDer(cert), expectedId);
            return undefined;
          } catch (e) {
            return e as Error;
          }
        },
      });
      const timer = setTimeout(
        () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      signal.addEventListener("abort", onAbort, { once: true });
      r.on("error", (e) => {
        const code = (e as NodeJS.ErrnoException).code;
        const rule = (e as { rule?: string }).rule;
        fail(
          new RefreshRejected({
            result: "rejected",
            kind: "trust-bundle-unreachable",
            message: `GET ${url}: ${rule ?? code ?? ""} ${e.message}`.trim(),
          }),
        );
      });
      r.on("response", (res) => {
        // A body cut short (destroyed request, reset socket) ends in "error" or "aborted", not "end".
        const cut = (e?: Error) =>
          fail(
            new RefreshRejected({
              result: "rejected",
              kind: "trust-bundle-unreachable",
              message: `GET ${url}: ${e?.message ?? "response aborted"}`,
            }),
          );
        res.on("error", cut);
        res.on("aborted", () => cut());
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_DOCUMENT_BYTES)
            r.destroy(new Error(`document over ${MAX_DOCUMENT_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on("end", () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          });
        });
      });
      r.end();
    });
  }

  /** spiffe_refresh_hint of the bundle in use, else the configured period (item 23). */
  private periodMs(): number {
    const hint = this.identity.trustState().refreshHintSeconds;
    const seconds = hint ?? this.config.trust.refreshIntervalSeconds;
    return Math.max(this.floorMs(), seconds * 1000);
  }

  /**
   * `trust.minRefreshSeconds` (default 5 s): a hint of 0 or 1 s must not turn the refresher into
   * a busy loop against the MIS; the conformance run lowers it to keep its trust checks short.
   */
  private floorMs(): number {
    return (this.config.trust.minRefreshSeconds ?? DEFAULT_MIN_REFRESH_SECONDS) * 1000;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** `at` pins the due time exactly (a deferral to a window's end must not drift by the clock read). */
  private arm(delayMs: number, at = this.now() + delayMs): void {
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = this.now();
        if (this.dueAt !== undefined && now < this.dueAt) {
          this.arm(this.dueAt - now, this.dueAt);
          return;
        }
        // Downtime means no requests and no retries (item 87): the due refresh waits it out.
        const allowedAt = nextAllowedAt(now, this.config);
        if (allowedAt > now) {
          this.log({
            level: "debug",
            msg: "trust bundle refresh deferred (downtime or outside polling hours)",
            until: new Date(allowedAt).toISOString(),
          });
          this.arm(allowedAt - now, allowedAt);
          return;
        }
        void this.refreshNow();
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    this.timer.unref();
  }
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
