import { describe, expect, it } from "vitest";
import { accepts, acceptsGzip, ifNoneMatchHits, parseEntityTags } from "./negotiation.js";

const M = "application/vnd.margo.manifest.v1+json";

describe("Accept negotiation for the State Manifest", () => {
  it("item 37: an absent or empty Accept admits the manifest type", () => {
    expect(accepts(undefined, M)).toBe(true);
    expect(accepts("", M)).toBe(true);
  });

  it("item 37: wildcards and the exact type (any case, with q) admit it", () => {
    for (const h of ["*/*", "application/*", M, M.toUpperCase(), `text/plain, ${M};q=0.5`]) {
      expect(accepts(h, M), h).toBe(true);
    }
  });

  it("item 38: only unsupported types refuse it", () => {
    for (const h of ["application/json", "text/*", "application/vnd.margo.manifest.v2+json"]) {
      expect(accepts(h, M), h).toBe(false);
    }
  });

  it("item 38: q=0 refuses, and the most specific range decides", () => {
    expect(accepts(`${M};q=0`, M)).toBe(false);
    expect(accepts(`*/*, ${M};q=0`, M)).toBe(false);
    expect(accepts(`application/*;q=0, ${M}`, M)).toBe(true);
    expect(accepts("*/*;q=0.001", M)).toBe(true);
  });

  it("ignores malformed ranges instead of failing", () => {
    expect(accepts("garbage, ;;, /", M)).toBe(false);
    expect(accepts(`garbage, ${M}`, M)).toBe(true);
  });
});

describe("Accept-Encoding", () => {
  it("item 49: gzip only when the client asks for it with q > 0", () => {
    expect(acceptsGzip(undefined)).toBe(false);
    expect(acceptsGzip("identity")).toBe(false);
    expect(acceptsGzip("gzip")).toBe(true);
    expect(acceptsGzip("br, GZIP;q=0.5")).toBe(true);
    expect(acceptsGzip("gzip;q=0")).toBe(false);
    expect(acceptsGzip("*")).toBe(true);
    expect(acceptsGzip("*, gzip;q=0")).toBe(false);
  });
});

describe("If-None-Match", () => {
  const etag = `"sha256:${"a".repeat(64)}"`;

  it("item 40: the exact ETag, a list containing it, a weak copy and * all match", () => {
    expect(ifNoneMatchHits(etag, etag)).toBe(true);
    expect(ifNoneMatchHits(`"x", ${etag}`, etag)).toBe(true);
    expect(ifNoneMatchHits(`W/${etag}`, etag)).toBe(true);
    expect(ifNoneMatchHits("*", etag)).toBe(true);
    expect(ifNoneMatchHits(`,, ${etag} ,`, etag)).toBe(true);
  });

  it("item 40: absent, other, unquoted or malformed values never match", () => {
    expect(ifNoneMatchHits(undefined, etag)).toBe(false);
    expect(ifNoneMatchHits(`"sha256:${"b".repeat(64)}"`, etag)).toBe(false);
    expect(ifNoneMatchHits(etag.slice(1, -1), etag)).toBe(false);
    expect(ifNoneMatchHits(`${etag} junk`, etag)).toBe(false);
    expect(ifNoneMatchHits(`"unterminated, ${etag}`, etag)).toBe(false);
  });

  it("keeps quoted commas inside one tag", () => {
    expect(parseEntityTags('"a,b", W/"c"')).toEqual(['"a,b"', '"c"']);
  });
});
