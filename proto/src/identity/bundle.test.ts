import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeSpiffeBundle } from "../wire/trust-bundle.js";
import {
  anchorJwk,
  anchorsFromBundle,
  anchorsFromBundleJson,
  BundleError,
  bundleFromAnchors,
  encodeAnchorsBundle,
} from "./bundle.js";
import { readCredentials, writeCredentials } from "./credentials-dir.js";
import { createRootCa, type MintedCertificate, pemToDer } from "./x509.js";

let a: MintedCertificate;
let b: MintedCertificate;

beforeAll(async () => {
  a = await createRootCa({ trustDomain: "example.org" });
  b = await createRootCa({ trustDomain: "example.org", commonName: "second" });
});

function ruleOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    return e instanceof BundleError ? e.rule : String(e);
  }
}

describe("SPIFFE bundle", () => {
  it("item 17: anchors become x509-svid JWKs with EC members and x5c, and read back in order", () => {
    const body = encodeAnchorsBundle([a.certDer, b.certDer], {
      sequence: 7n,
      refreshHintSeconds: 300,
    });
    const text = body.toString("utf8");
    expect(text).toMatch(/^\{"keys":\[\{"crv":"P-256","kty":"EC","use":"x509-svid"/);
    expect(text).toContain('"spiffe_refresh_hint":300,"spiffe_sequence":7}');
    const back = anchorsFromBundleJson(body);
    expect(back.anchors.map((d) => d.toString("hex"))).toEqual([
      a.certDer.toString("hex"),
      b.certDer.toString("hex"),
    ]);
    expect(back.bundle.spiffeSequence).toBe(7n);
  });

  it("RSA anchors carry n and e", async () => {
    const rsa = await createRootCa({ trustDomain: "example.org", keyAlgorithm: "RSA-3072" });
    const jwk = anchorJwk(rsa.certDer);
    expect(jwk.kty).toBe("RSA");
    expect(jwk.e).toBe("AQAB");
    expect(jwk.n?.length).toBeGreaterThan(500);
    expect(anchorsFromBundle(bundleFromAnchors([rsa.certDer], {}))).toHaveLength(1);
  });

  it("item 20: jwt-svid keys are ignored", () => {
    const bundle = bundleFromAnchors([a.certDer], { sequence: 1n });
    bundle.keys.push({
      kty: "EC",
      use: "jwt-svid",
      kid: "k1",
      crv: "P-256",
      x: "AA",
      y: "AA",
      x5c: [],
    });
    expect(anchorsFromBundle(bundle)).toHaveLength(1);
  });

  it("item 21: a bundle with no x509-svid key is refused (fail closed)", () => {
    expect(ruleOf(() => anchorsFromBundle({ keys: [] }))).toBe("bundle.no-x509-anchor");
    const json = '{"keys":[{"kty":"EC","use":"jwt-svid","crv":"P-256","x":"AA","y":"AA"}]}';
    expect(ruleOf(() => anchorsFromBundleJson(json))).toBe("wire.no-x509-anchor");
  });

  it("refuses a JWK whose members do not match its x5c certificate", () => {
    const bundle = bundleFromAnchors([a.certDer], {});
    const k = bundle.keys[0];
    if (!k) throw new Error("no key");
    k.x = anchorJwk(b.certDer).x;
    expect(ruleOf(() => anchorsFromBundle(bundle))).toBe("bundle.key-mismatch");
    k.x5c = [];
    expect(ruleOf(() => anchorsFromBundle(bundle))).toBe("bundle.x5c-count");
  });

  it("the encoded bundle passes the wire decoder unchanged", () => {
    const body = encodeAnchorsBundle([a.certDer], { sequence: 2n, refreshHintSeconds: 60 });
    const d = decodeSpiffeBundle(body);
    expect(d.problems).toEqual([]);
    expect(d.value?.keys[0]?.x5c).toEqual([a.certDer.toString("base64")]);
  });
});

describe("credentials folder", () => {
  it("writes svid.pem, svid.key (0600), bundle.pem and bundle.json and reads them back", async () => {
    const dir = join(await mkdtemp(join(tmpdir(), "creds-")), "device");
    const bundle = encodeAnchorsBundle([a.certDer], { sequence: 1n });
    await writeCredentials(dir, {
      spiffeId: "spiffe://example.org/margo/wfm/w/client/c",
      certificateChainPem: b.certPem,
      privateKeyPem: b.keyPem,
      trustBundlePem: a.certPem,
      spiffeBundleJson: bundle,
    });
    expect((await stat(join(dir, "svid.key"))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const back = await readCredentials(dir);
    expect(pemToDer(back.chainPem)[0]?.equals(b.certDer)).toBe(true);
    expect(back.keyPem).toBe(b.keyPem);
    expect(pemToDer(back.bundlePem)[0]?.equals(a.certDer)).toBe(true);
    expect(back.bundleJson.equals(bundle)).toBe(true);
    expect(await readFile(join(dir, "bundle.json"), "utf8")).toContain('"use":"x509-svid"');
  });
});
