/**
 * Tiny in-memory suites for the runner's, reports' and CLI's unit tests: checks that pass, fail,
 * skip, throw or hang on purpose, so the outcome mapping is tested without any implementation.
 * Not used by the harness itself.
 */
import type { Check, CheckTools, Level, Suite, SuiteName, SuiteSession } from "./types.js";

export type Behaviour =
  | "pass"
  | "fail"
  | "skip"
  | "type-error"
  | "hang"
  | "expect-equal"
  | "secret-evidence";

export function fakeCheck(
  suite: SuiteName,
  name: string,
  behaviour: Behaviour,
  extra: {
    level?: Level;
    features?: string[];
    requirements?: string[];
    timeoutMs?: number;
    family?: string;
  } = {},
): Check<{ calls: string[] }> {
  const id = `${suite}.${extra.family ?? "fake"}.${name}`;
  return {
    id,
    title: `fake ${behaviour} check`,
    suite,
    family: id.split(".").slice(0, 2).join("."),
    requirements: extra.requirements ?? [`${suite}-001`],
    level: extra.level ?? "MUST",
    ...(extra.features ? { features: extra.features } : {}),
    ...(extra.timeoutMs !== undefined ? { timeoutMs: extra.timeoutMs } : {}),
    async run(ctx, t: CheckTools) {
      ctx.calls.push(id);
      t.note(`running ${id}`);
      switch (behaviour) {
        case "pass":
          return;
        case "fail":
          t.fail("expected 200, got 500 (item 1)", { status: 500 });
          return;
        case "skip":
          t.skip("not applicable here");
          return;
        case "type-error":
          // A harness bug: reading a property of undefined.
          (undefined as unknown as { x: { y: number } }).x.y;
          return;
        case "hang":
          await new Promise<void>((resolve) => t.signal.addEventListener("abort", () => resolve()));
          return;
        case "expect-equal":
          t.expectEqual({ a: 1, b: [1, 2], c: 10n }, { a: 1, b: [1, 3], c: "10" }, "manifest body");
          return;
        case "secret-evidence":
          t.evidence({
            kind: "http",
            at: new Date().toISOString(),
            durationMs: 1,
            request: {
              method: "GET",
              url: "https://127.0.0.1:1/x",
              headers: { authorization: "Bearer abcdefghijklmnop" },
            },
            response: {
              status: 200,
              headers: {},
              body: {
                text: "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
                sizeBytes: 10,
                sha256: "00",
                truncated: false,
              },
            },
          });
          return;
      }
    },
  };
}

export interface FakeSuiteOptions {
  openError?: Error;
  features?: string[];
  beforeEachError?: Error;
  closeError?: Error;
  /** open() takes this long (to test the set-up deadline). */
  openDelayMs?: number;
}

/** A suite of the given checks; `log` records open/beforeEach/close order. */
export function fakeSuite(
  name: SuiteName,
  checks: Check<{ calls: string[] }>[],
  opts: FakeSuiteOptions = {},
): Suite<{ calls: string[] }, unknown> & { log: string[] } {
  const log: string[] = [];
  return {
    name,
    checks,
    log,
    async open(_config, io): Promise<SuiteSession<{ calls: string[] }>> {
      log.push(`open ${io.workDir.endsWith(name) ? name : io.workDir}`);
      io.log("opening");
      if (opts.openError) throw opts.openError;
      if (opts.openDelayMs) await new Promise((r) => setTimeout(r, opts.openDelayMs));
      const ctx = { calls: log };
      return {
        ctx,
        implementation: {
          vendor: "Fake",
          product: `fake-${name}`,
          version: "1",
          margoVersion: "1.0.0-rc.3",
          features: opts.features ?? [],
          endpoint: "https://127.0.0.1:1",
        },
        async beforeEach(check) {
          log.push(`reset ${check.id}`);
          if (opts.beforeEachError) throw opts.beforeEachError;
        },
        async close() {
          log.push("close");
          if (opts.closeError) throw opts.closeError;
        },
      };
    },
  };
}
