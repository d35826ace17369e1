/**
 * Driver calls are evidence too, but the driver lives for the whole suite while checks come and
 * go. The suite points this recorder at the running check (checks run one after another within a
 * suite), so drivers need no CheckTools parameter and the WfmDriver contract stays small.
 */
import type { Evidence } from "../../../core/types.js";

export class EvidenceRecorder {
  private sink: ((e: Evidence) => void) | undefined;

  /** Send evidence to this check from now on (undefined: drop it, e.g. during open()). */
  bind(sink: ((e: Evidence) => void) | undefined): void {
    this.sink = sink;
  }

  record(e: Evidence): void {
    this.sink?.(e);
  }
}
