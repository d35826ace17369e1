/**
 * The CheckTools a running check gets. Everything a check records passes through redaction here,
 * so no suite can leak a secret into a report by forgetting to redact.
 */
import { redactEvidence, redactText, sanitize } from "./redact.js";
import { CheckFailed, CheckSkipped, type CheckTools, type Evidence } from "./types.js";

/** Evidence entries kept per check; more are counted, not stored (a polling loop must not bloat the report). */
export const DEFAULT_EVIDENCE_CAP = 200;

/** One difference between an actual and an expected value, by JSON pointer. */
export interface ValueDifference {
  path: string;
  expected: unknown;
  actual: unknown;
}

/** What `expectEqual` attaches to its failure: both values plus where they differ. */
export interface EqualityDetails {
  what: string;
  expected: unknown;
  actual: unknown;
  differences: ValueDifference[];
}

/** The tools plus what the runner reads back when the check is over. */
export interface CheckToolsHandle {
  tools: CheckTools;
  /** Stop recording (a timed-out check may keep running in the background). */
  seal(): void;
  notes(): string[];
  evidence(): Evidence[];
  /** Evidence entries not kept because of the cap. */
  droppedEvidence(): number;
}

export function createCheckTools(opts: {
  signal: AbortSignal;
  evidenceCap?: number;
  now?: () => Date;
}): CheckToolsHandle {
  const cap = opts.evidenceCap ?? DEFAULT_EVIDENCE_CAP;
  const now = opts.now ?? (() => new Date());
  const notes: string[] = [];
  const evidence: Evidence[] = [];
  let dropped = 0;
  let sealed = false;

  const record = (e: Evidence) => {
    if (sealed) return;
    if (evidence.length >= cap) {
      dropped++;
      return;
    }
    evidence.push(redactEvidence(e));
  };

  const tools: CheckTools = {
    signal: opts.signal,
    evidence: record,
    note(text: string) {
      if (sealed) return;
      const clean = redactText(text);
      notes.push(clean);
      record({ kind: "note", at: now().toISOString(), text: clean });
    },
    fail(message: string, details?: unknown): never {
      throw new CheckFailed(message, details === undefined ? undefined : sanitize(details));
    },
    skip(reason: string): never {
      throw new CheckSkipped(reason);
    },
    expect(cond: unknown, message: string, details?: unknown): asserts cond {
      if (!cond) tools.fail(message, details);
    },
    expectEqual<T>(actual: unknown, expected: T, what: string): asserts actual is T {
      const differences = diffValues(actual, expected);
      if (differences.length === 0) return;
      const shown = differences
        .slice(0, 3)
        .map((d) => `${d.path || "(value)"}: expected ${short(d.expected)}, got ${short(d.actual)}`)
        .join("; ");
      const more = differences.length > 3 ? ` (+${differences.length - 3} more)` : "";
      const details: EqualityDetails = {
        what,
        expected: toJson(expected),
        actual: toJson(actual),
        differences: differences.slice(0, 50),
      };
      tools.fail(`${what}: ${shown}${more}`, details);
    },
  };

  return {
    tools,
    seal: () => {
      sealed = true;
    },
    notes: () => [...notes],
    evidence: () => [...evidence],
    droppedEvidence: () => dropped,
  };
}

/** JSON view of a value for comparison: bigint as string, undefined members dropped, bytes as base64. */
function toJson(v: unknown): unknown {
  return sanitize(v);
}

function short(v: unknown): string {
  const s = v === undefined ? "(absent)" : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Deep comparison in JSON terms (key order ignored) listing every differing leaf by JSON pointer,
 * so a vendor sees exactly which field was wrong rather than two large blobs.
 */
export function diffValues(actual: unknown, expected: unknown): ValueDifference[] {
  const out: ValueDifference[] = [];
  walk(toJson(actual), toJson(expected), "", out);
  return out;
}

function walk(a: unknown, e: unknown, path: string, out: ValueDifference[]): void {
  if (out.length > 200) return;
  if (a === e) return;
  const aObj = a !== null && typeof a === "object";
  const eObj = e !== null && typeof e === "object";
  if (aObj && eObj && Array.isArray(a) === Array.isArray(e)) {
    if (Array.isArray(a) && Array.isArray(e)) {
      const n = Math.max(a.length, e.length);
      for (let i = 0; i < n; i++) walk(a[i], e[i], `${path}/${i}`, out);
      return;
    }
    const ar = a as Record<string, unknown>;
    const er = e as Record<string, unknown>;
    const keys = new Set([...Object.keys(er), ...Object.keys(ar)]);
    for (const k of keys)
      walk(ar[k], er[k], `${path}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`, out);
    return;
  }
  out.push({ path, expected: e, actual: a });
}
