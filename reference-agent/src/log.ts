/**
 * One structured log line per event, JSON on stderr, so a vendor can grep why the agent rejected
 * something (`kind` is the same string the store records and DeviceDriver reports).
 */
export interface LogEvent {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  /** Stable machine-readable kind for rejections and failures, e.g. "digest-mismatch". */
  kind?: string;
  [key: string]: unknown;
}

export type AgentLog = (event: LogEvent) => void;

/** JSON lines on stderr; `debug` only when MARGO_AGENT_DEBUG=1. */
export const stderrLog: AgentLog = (event) => {
  if (event.level === "debug" && process.env.MARGO_AGENT_DEBUG !== "1") return;
  process.stderr.write(
    `${JSON.stringify({ at: new Date().toISOString(), ...event }, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}\n`,
  );
};

/** Discards everything (unit tests that assert on the store instead). */
export const silentLog: AgentLog = () => {};
