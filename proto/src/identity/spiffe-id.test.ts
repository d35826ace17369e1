import { describe, expect, it } from "vitest";
import {
  formatSpiffeId,
  isValidSegment,
  isValidTrustDomain,
  miafName,
  operatorSpiffeId,
  parseSpiffeId,
  SpiffeIdError,
  wfmClientSpiffeId,
  wfmSpiffeId,
} from "./spiffe-id.js";

function ruleOf(uri: string): string {
  try {
    parseSpiffeId(uri);
    return "ok";
  } catch (e) {
    return e instanceof SpiffeIdError ? e.rule : String(e);
  }
}

describe("SPIFFE IDs", () => {
  it("item 16: MIAF names for a WFM and its clients start with /margo/", () => {
    expect(wfmSpiffeId("example.org", "wfm-1")).toBe("spiffe://example.org/margo/wfm/wfm-1");
    expect(wfmClientSpiffeId("example.org", "wfm-1", "dev_01~a")).toBe(
      "spiffe://example.org/margo/wfm/wfm-1/client/dev_01~a",
    );
    expect(operatorSpiffeId("example.org", "alice")).toBe("spiffe://example.org/operator/alice");
  });

  it("item 16: segments are non-empty RFC 3986 unreserved text and not . or ..", () => {
    for (const ok of ["a", "A-Z_0.9~", "...", "x.y"]) expect(isValidSegment(ok)).toBe(true);
    for (const bad of ["", ".", "..", "a b", "a%20", "a:b", "a@b", "é", "a/b", "a+b"])
      expect(isValidSegment(bad)).toBe(false);
    expect(() => wfmClientSpiffeId("example.org", "wfm-1", "..")).toThrow(SpiffeIdError);
    expect(() => wfmSpiffeId("example.org", "")).toThrow(SpiffeIdError);
  });

  it("trust domain names are lowercase letters, digits, . - _", () => {
    expect(isValidTrustDomain("factory.example")).toBe(true);
    expect(isValidTrustDomain("a_b-c.1")).toBe(true);
    for (const bad of ["", "Example.org", "example.org:443", "user@example.org", "[::1]"])
      expect(isValidTrustDomain(bad)).toBe(false);
  });

  it("parses exactly and refuses every non-canonical form with a stable rule", () => {
    expect(parseSpiffeId("spiffe://example.org/margo/wfm/w").segments).toEqual([
      "margo",
      "wfm",
      "w",
    ]);
    expect(parseSpiffeId("spiffe://example.org").segments).toEqual([]);
    expect(ruleOf("https://example.org/x")).toBe("spiffe-id.scheme");
    expect(ruleOf("SPIFFE://example.org/x")).toBe("spiffe-id.scheme");
    expect(ruleOf("spiffe://Example.org/x")).toBe("spiffe-id.trust-domain");
    expect(ruleOf("spiffe://example.org:8443/x")).toBe("spiffe-id.trust-domain");
    expect(ruleOf("spiffe://example.org/")).toBe("spiffe-id.trailing-slash");
    expect(ruleOf("spiffe://example.org/a//b")).toBe("spiffe-id.empty-segment");
    expect(ruleOf("spiffe://example.org/a/./b")).toBe("spiffe-id.segment");
    expect(ruleOf("spiffe://example.org/a?q=1")).toBe("spiffe-id.segment");
    expect(ruleOf(`spiffe://example.org/${"a".repeat(2100)}`)).toBe("spiffe-id.too-long");
    expect(() => formatSpiffeId("example.org", "a b")).toThrow(SpiffeIdError);
  });

  it("item 6: miafName classifies WFM and client IDs by exact, case-sensitive segments", () => {
    const name = (u: string) => miafName(parseSpiffeId(u));
    expect(name("spiffe://td/margo/wfm/w1")).toEqual({
      kind: "wfm",
      trustDomain: "td",
      wfmId: "w1",
    });
    expect(name("spiffe://td/margo/wfm/w1/client/c1")).toEqual({
      kind: "wfm-client",
      trustDomain: "td",
      wfmId: "w1",
      clientId: "c1",
    });
    expect(name("spiffe://td/Margo/wfm/w1/client/c1")).toBeUndefined();
    expect(name("spiffe://td/margo/wfm/w1/Client/c1")).toBeUndefined();
    expect(name("spiffe://td/margo/wfm/w1/client/c1/extra")).toBeUndefined();
    expect(name("spiffe://td/margo/wfm/w1/client")).toBeUndefined();
    expect(name("spiffe://td/operator/alice")).toBeUndefined();
  });
});
