import type { AgentIdentity } from "../identity/types.js";
import type { AgentLog } from "../log.js";
import type { BackoffOptions } from "./backoff.js";

export interface ManifestWatchOptions {
  log?: AgentLog;
  /** Reconnect spacing; default base 500 ms, cap 30 s. */
  backoff?: BackoffOptions;
}

/** A WatchManifest stream to the WFM's gRPC binding; `onChange(etag)` on every revision. */
export class ManifestWatch {
  constructor(
    readonly address: string,
    readonly identity: AgentIdentity,
    readonly opts: ManifestWatchOptions = {},
  ) {}
  start(_onChange: (etag: string) => void): void {}
  stop(): void {}
  get up(): boolean {
    return false;
  }
}
