import { createRootCa, mintSvid, pemToDer } from "@margo/proto/identity";
import { describe, expect, it } from "vitest";
import { IdentityError } from "./types.js";
import { CLOCK_SKEW_SECONDS, VerifyCache } from "./verify-cache.js";

const TD = "example.org";

async function setup() {
  const root = await createRootCa({ trustDomain: TD });
  const other = await createRootCa({ trustDomain: TD });
  const svid = await mintSvid({
    issuer: { certDer: root.certDer, privateKey: root.keys.privateKey },
    spiffeId: `spiffe://${TD}/margo/wfm/wfm-1/client/dev-a`,
    lifetimeSeconds: 600,
  });
  return { root, other, svid, chain: pemToDer(svid.certPem) };
}

function ruleOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof IdentityError) return e.rule;
    throw e;
  }
  return undefined;
}

describe("VerifyCache", () => {
  it("a cached verdict still expires: a hit re-checks the path validity with the skew", async () => {
    const { root, svid, chain } = await setup();
    const cache = new VerifyCache(TD, [root.certDer]);
    const first = cache.verify(chain, new Date());
    expect(first.spiffeId).toBe(`spiffe://${TD}/margo/wfm/wfm-1/client/dev-a`);
    const skewMs = CLOCK_SKEW_SECONDS * 1000;
    // Within the skew it still holds; one second beyond it does not.
    expect(cache.verify(chain, new Date(svid.notAfter.getTime() + skewMs - 1000))).toBe(first);
    expect(
      ruleOf(() => cache.verify(chain, new Date(svid.notAfter.getTime() + skewMs + 1000))),
    ).toBe("svid.expired");
  });

  it("new anchors drop every cached verdict: a chain to a removed anchor is refused at once", async () => {
    const { root, other, chain } = await setup();
    const cache = new VerifyCache(TD, [root.certDer]);
    cache.verify(chain, new Date());
    cache.setAnchors([other.certDer]);
    expect(ruleOf(() => cache.verify(chain, new Date()))).toBeDefined();
    cache.setAnchors([other.certDer, root.certDer]);
    expect(cache.verify(chain, new Date()).spiffeId).toContain("/client/dev-a");
  });
});
