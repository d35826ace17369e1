import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { BodyIdleError, BodyTooSlowError, readBody, unsupportedBodyEncoding } from "./body.js";

/** A stream standing in for a request body (readBody only listens to stream events). */
function fakeRequest(): PassThrough & IncomingMessage {
  return new PassThrough() as PassThrough & IncomingMessage;
}

describe("unsupportedBodyEncoding", () => {
  it("accepts no coding, identity in any case, and utf-8 in any case or quoted", () => {
    expect(unsupportedBodyEncoding("application/json", undefined)).toBeUndefined();
    expect(unsupportedBodyEncoding("application/json", "Identity")).toBeUndefined();
    expect(unsupportedBodyEncoding("application/json", "")).toBeUndefined();
    expect(unsupportedBodyEncoding("application/json; charset=UTF-8", undefined)).toBeUndefined();
    expect(unsupportedBodyEncoding('application/json;CHARSET="utf-8"', undefined)).toBeUndefined();
  });

  it("refuses every other content coding, also inside a list", () => {
    expect(unsupportedBodyEncoding("application/json", "gzip")).toMatch(/gzip/);
    expect(unsupportedBodyEncoding("application/json", "identity, BR")).toMatch(/br/);
    expect(unsupportedBodyEncoding("application/json", ["identity", "deflate"])).toMatch(/deflate/);
  });

  it("refuses every other charset", () => {
    expect(unsupportedBodyEncoding("application/json; charset=latin1", undefined)).toMatch(
      /latin1/,
    );
    expect(unsupportedBodyEncoding('application/json; charset="utf-16"', undefined)).toMatch(
      /utf-16/,
    );
    expect(unsupportedBodyEncoding("application/json; charset=utf8", undefined)).toMatch(/utf8/);
  });
});

describe("readBody", () => {
  it("fails with BodyIdleError when the body goes quiet for idleMs", async () => {
    const req = fakeRequest();
    const started = Date.now();
    const read = readBody(req, 1024, { idleMs: 100 });
    req.write("{");
    await expect(read).rejects.toBeInstanceOf(BodyIdleError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it("keeps waiting while bytes keep coming, and resolves with all of them", async () => {
    const req = fakeRequest();
    const read = readBody(req, 1024, { idleMs: 100 });
    for (const piece of ["[", "1", ",", "2", "]"]) {
      await new Promise((r) => setTimeout(r, 50));
      req.write(piece);
    }
    req.end();
    expect((await read).toString()).toBe("[1,2]");
  });

  it("a body that keeps ahead of the least rate is read however long it takes, past the grace", async () => {
    const req = fakeRequest();
    const started = Date.now();
    const read = readBody(req, 10_000, { idleMs: 200, graceMs: 100, minBytesPerSecond: 1000 });
    // 100 bytes every 50 ms is 2000 bytes/s: twice the least rate, for 6x the grace.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 50));
      req.write("x".repeat(100));
    }
    req.end();
    expect((await read).length).toBe(1200);
    expect(Date.now() - started).toBeGreaterThan(500);
  });

  it("fails with BodyTooSlowError once the average after the grace falls behind, though never idle", async () => {
    const req = fakeRequest();
    const started = Date.now();
    const read = readBody(req, 10_000, { idleMs: 200, graceMs: 100, minBytesPerSecond: 1000 });
    // 10 bytes every 50 ms is 200 bytes/s: the idle rule never fires, the rate rule does.
    const t = setInterval(() => req.write("x".repeat(10)), 50);
    try {
      const err = await read.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BodyTooSlowError);
      expect(String((err as Error).message)).toMatch(/1000 bytes\/s/);
      const after = Date.now() - started;
      expect(after).toBeGreaterThanOrEqual(100);
      expect(after).toBeLessThan(600);
    } finally {
      clearInterval(t);
    }
  });
});
