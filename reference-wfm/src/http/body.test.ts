import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { BodyIdleError, readBody, unsupportedBodyEncoding } from "./body.js";

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
    const read = readBody(req, 1024, 100);
    req.write("{");
    await expect(read).rejects.toBeInstanceOf(BodyIdleError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it("keeps waiting while bytes keep coming, and resolves with all of them", async () => {
    const req = fakeRequest();
    const read = readBody(req, 1024, 100);
    for (const piece of ["[", "1", ",", "2", "]"]) {
      await new Promise((r) => setTimeout(r, 50));
      req.write(piece);
    }
    req.end();
    expect((await read).toString()).toBe("[1,2]");
  });
});
