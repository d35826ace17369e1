/**
 * Structured log sink of the edges. One JSON line per event on stderr by default; tests pass a
 * collector so they can assert that a refused certificate was logged with its rule.
 */
export type EdgeLog = (event: string, fields: Record<string, unknown>) => void;

/** Default sink: one JSON object per line on stderr, so logs stay greppable and parseable. */
export const stderrLog: EdgeLog = (event, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
};
