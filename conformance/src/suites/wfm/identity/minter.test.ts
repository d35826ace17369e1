import { createRootCa, pemToDer, SvidVerificationError, verifySvid } from "@margo/proto/identity";
import { describe, expect, it } from "vitest";
import type { Flaw } from "./minter.js";
import { foreignMinter, minterFor } from "./minter.js";

const TD = "example.org";
const ID = `spiffe://${TD}/margo/wfm/wfm-1/client/edge-1`;

/** Each flaw must be refused by the authoritative verifier for exactly its own rule. */
const EXPECTED_RULE: Record<Flaw, string> = {
  expired: "svid.expired",
  "not-yet-valid": "svid.not-yet-valid",
  "ca-true": "svid.ca-leaf",
  "key-cert-sign": "svid.key-cert-sign",
  "two-uris": "svid.multiple-uri-sans",
  "no-uri": "svid.no-uri-san",
  "rsa-2048": "svid.weak-key",
};

describe("minterFor", async () => {
  const root = await createRootCa({ trustDomain: TD });
  const minter = minterFor(TD, { certDer: root.certDer, privateKey: root.keys.privateKey }, []);

  it("mints an SVID the verifier accepts when unflawed", async () => {
    const c = await minter.clientSvid(ID);
    const v = verifySvid(pemToDer(c.chainPem), [root.certDer], { trustDomain: TD });
    expect(v.spiffeId).toBe(ID);
  });

  for (const [flaw, rule] of Object.entries(EXPECTED_RULE) as Array<[Flaw, string]>) {
    it(`flaw ${flaw} is refused as ${rule}`, async () => {
      const c = await minter.clientSvid(ID, flaw);
      let err: unknown;
      try {
        verifySvid(pemToDer(c.chainPem), [root.certDer], { trustDomain: TD });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SvidVerificationError);
      expect((err as SvidVerificationError).rule).toBe(rule);
    });
  }

  it("foreign minter's SVIDs do not chain to the domain's root", async () => {
    const f = await foreignMinter();
    const c = await f.clientSvid(ID);
    expect(() => verifySvid(pemToDer(c.chainPem), [root.certDer], { trustDomain: TD })).toThrow(
      SvidVerificationError,
    );
  });
});
