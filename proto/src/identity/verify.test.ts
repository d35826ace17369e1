import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { wfmClientSpiffeId } from "./spiffe-id.js";
import { SvidVerificationError, TrustAnchors, verifySvid } from "./verify.js";
import {
  createIntermediateCa,
  createRootCa,
  type Issuer,
  type MintedCertificate,
  type MintOptions,
  mintCertificate,
  mintSvid,
} from "./x509.js";

const TD = "example.org";
const CLIENT = wfmClientSpiffeId(TD, "wfm-1", "client-1");
const DAY = 24 * 3600 * 1000;

let root: MintedCertificate;
let rootIssuer: Issuer;
let otherRoot: MintedCertificate;
let anchors: TrustAnchors;

const issuerOf = (c: MintedCertificate): Issuer => ({
  certDer: c.certDer,
  privateKey: c.keys.privateKey,
});

/** A leaf that is a valid SVID unless an override breaks it. */
function leaf(over: Partial<MintOptions> = {}): Promise<MintedCertificate> {
  return mintCertificate({
    subject: "O=example.org, CN=test",
    issuer: rootIssuer,
    ca: false,
    keyUsage: ["digitalSignature"],
    extendedKeyUsage: ["serverAuth", "clientAuth"],
    uris: [CLIENT],
    ...over,
  });
}

function ruleOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof SvidVerificationError) return e.rule;
    throw e;
  }
  return "accepted";
}

const check = (chain: Buffer[], a: TrustAnchors | Buffer[] = anchors, now?: Date) =>
  ruleOf(() => verifySvid(chain, a, { trustDomain: TD, ...(now ? { now } : {}) }));

beforeAll(async () => {
  root = await createRootCa({ trustDomain: TD });
  rootIssuer = issuerOf(root);
  otherRoot = await createRootCa({ trustDomain: TD, commonName: "Other root" });
  anchors = new TrustAnchors([root.certDer]);
});

describe("minted SVIDs", () => {
  it("item 10: mintSvid makes a leaf with one URI SAN, cA=false, server+client EKU, random serial", async () => {
    const a = await mintSvid({ issuer: rootIssuer, spiffeId: CLIENT, dnsNames: ["localhost"] });
    const b = await mintSvid({ issuer: rootIssuer, spiffeId: CLIENT });
    const x = new X509Certificate(a.certDer);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBe(`URI:${CLIENT}, DNS:localhost`);
    expect(x.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(x.checkIssued(new X509Certificate(root.certDer))).toBe(true);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(new X509Certificate(root.certDer).ca).toBe(true);
  });
});

describe("verifySvid", () => {
  it("item 9: accepts a valid P-256 SVID and returns its SPIFFE ID and notAfter", async () => {
    const l = await leaf();
    const v = verifySvid([l.certDer], anchors, { trustDomain: TD });
    expect(v.spiffeId).toBe(CLIENT);
    expect(v.id.segments).toEqual(["margo", "wfm", "wfm-1", "client", "client-1"]);
    expect(v.notAfter.getTime()).toBe(l.notAfter.getTime());
    expect(v.anchorFingerprint).toBe(anchors.anchors[0]?.fingerprint);
  });

  it("accepts raw DER anchors as well as a prepared TrustAnchors", async () => {
    const l = await leaf();
    expect(check([l.certDer], [root.certDer])).toBe("accepted");
  });

  it("item 9: any anchor of the bundle is accepted (two anchors)", async () => {
    const a = await leaf();
    const b = await leaf({ issuer: issuerOf(otherRoot) });
    const both = new TrustAnchors([root.certDer, otherRoot.certDer]);
    expect(check([a.certDer], both)).toBe("accepted");
    expect(check([b.certDer], both)).toBe("accepted");
    expect(check([b.certDer], anchors)).toBe("svid.untrusted-chain");
  });

  it("item 12: chains through a presented intermediate; without it the chain is untrusted", async () => {
    const inter = await createIntermediateCa({ issuer: rootIssuer, trustDomain: TD });
    const l = await leaf({ issuer: issuerOf(inter) });
    expect(check([l.certDer, inter.certDer])).toBe("accepted");
    expect(check([l.certDer])).toBe("svid.untrusted-chain");
    // The root may be presented too; it is trusted only because it is an anchor.
    expect(check([l.certDer, inter.certDer, root.certDer])).toBe("accepted");
  });

  it("refuses an intermediate that is not a CA", async () => {
    const notCa = await mintCertificate({
      subject: "O=example.org, CN=not a CA",
      issuer: rootIssuer,
      ca: false,
      keyUsage: ["digitalSignature"],
    });
    const l = await leaf({ issuer: issuerOf(notCa) });
    expect(check([l.certDer, notCa.certDer])).toBe("svid.intermediate-not-ca");
  });

  it("item 10: refuses a leaf with cA=true", async () => {
    expect(check([(await leaf({ ca: true })).certDer])).toBe("svid.ca-leaf");
  });

  it("item 10: refuses a leaf with keyCertSign", async () => {
    const l = await leaf({ keyUsage: ["digitalSignature", "keyCertSign"] });
    expect(check([l.certDer])).toBe("svid.key-cert-sign");
  });

  it("item 10: refuses a leaf with cRLSign", async () => {
    const l = await leaf({ keyUsage: ["digitalSignature", "cRLSign"] });
    expect(check([l.certDer])).toBe("svid.crl-sign");
  });

  it("item 10: refuses zero URI SANs (DNS names never identify)", async () => {
    const l = await leaf({ uris: [], dnsNames: ["client-1.example.org"] });
    expect(check([l.certDer])).toBe("svid.no-uri-san");
  });

  it("item 10: refuses two URI SANs", async () => {
    const l = await leaf({ uris: [CLIENT, wfmClientSpiffeId(TD, "wfm-1", "client-2")] });
    expect(check([l.certDer])).toBe("svid.multiple-uri-sans");
  });

  it("item 10: refuses a non-spiffe scheme", async () => {
    expect(check([(await leaf({ uris: ["https://example.org/margo/x"] })).certDer])).toBe(
      "svid.not-spiffe",
    );
    expect(check([(await leaf({ uris: ["SPIFFE://example.org/margo/x"] })).certDer])).toBe(
      "svid.not-spiffe",
    );
  });

  it("item 10: refuses the trust domain root path", async () => {
    expect(check([(await leaf({ uris: ["spiffe://example.org"] })).certDer])).toBe(
      "svid.root-path",
    );
  });

  it("item 16: refuses a SPIFFE ID with a dot segment or reserved characters", async () => {
    for (const uri of ["spiffe://example.org/margo/wfm/../client", "spiffe://example.org/a%41"])
      expect(check([(await leaf({ uris: [uri] })).certDer])).toBe("svid.malformed-spiffe-id");
  });

  it("item 10: refuses a foreign trust domain, even when signed by our anchor", async () => {
    const l = await leaf({ uris: ["spiffe://other.org/margo/wfm/wfm-1/client/client-1"] });
    expect(check([l.certDer])).toBe("svid.foreign-trust-domain");
  });

  it("item 9: refuses an expired leaf and a not-yet-valid leaf", async () => {
    const now = Date.now();
    const expired = await leaf({
      notBefore: new Date(now - 2 * DAY),
      notAfter: new Date(now - DAY),
    });
    const future = await leaf({
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 2 * DAY),
    });
    expect(check([expired.certDer])).toBe("svid.expired");
    expect(check([future.certDer])).toBe("svid.not-yet-valid");
  });

  it("item 9: honours the clock passed in and a bounded skew", async () => {
    const l = await leaf({ lifetimeSeconds: 3600 });
    const justAfter = new Date(l.notAfter.getTime() + 10_000);
    expect(check([l.certDer], anchors, justAfter)).toBe("svid.expired");
    expect(
      ruleOf(() =>
        verifySvid([l.certDer], anchors, { trustDomain: TD, now: justAfter, skewSeconds: 30 }),
      ),
    ).toBe("accepted");
  });

  it("item 9: refuses a chain through an expired intermediate", async () => {
    const now = Date.now();
    const inter = await createIntermediateCa({
      issuer: rootIssuer,
      trustDomain: TD,
      notBefore: new Date(now - 3 * DAY),
      notAfter: new Date(now - DAY),
    });
    const l = await leaf({ issuer: issuerOf(inter), notBefore: new Date(now - 2 * DAY) });
    expect(check([l.certDer, inter.certDer])).toBe("svid.expired");
  });

  it("item 11: refuses an RSA-2048 leaf and accepts RSA-3072 and P-384", async () => {
    expect(check([(await leaf({ keyAlgorithm: "RSA-2048" })).certDer])).toBe("svid.weak-key");
    expect(check([(await leaf({ keyAlgorithm: "RSA-3072" })).certDer])).toBe("accepted");
    expect(check([(await leaf({ keyAlgorithm: "P-384" })).certDer])).toBe("accepted");
  });

  it("item 11: verifies a P-384 root signing with SHA-384", async () => {
    const r384 = await createRootCa({ trustDomain: TD, keyAlgorithm: "P-384" });
    const l = await leaf({ issuer: issuerOf(r384) });
    expect(check([l.certDer], [r384.certDer])).toBe("accepted");
  });

  it("item 9: refuses a leaf signed by a foreign CA (also one with our CA's name)", async () => {
    const foreign = await createRootCa({ trustDomain: "other.org" });
    expect(check([(await leaf({ issuer: issuerOf(foreign) })).certDer])).toBe(
      "svid.untrusted-chain",
    );
    const impostor = await createRootCa({ trustDomain: TD }); // same subject DN as `root`
    expect(check([(await leaf({ issuer: issuerOf(impostor) })).certDer])).toBe(
      "svid.untrusted-chain",
    );
  });

  it("refuses a leaf whose signature was altered", async () => {
    const der = Buffer.from((await leaf()).certDer);
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
    expect(check([der])).toBe("svid.bad-signature");
  });

  it("refuses an empty chain, garbage and an empty bundle", async () => {
    expect(check([])).toBe("svid.empty-chain");
    expect(check([Buffer.from("not a certificate")])).toBe("svid.malformed");
    expect(check([(await leaf()).certDer], [])).toBe("svid.no-anchors");
  });

  it("digest 5.2: checks the SPIFFE ID before the chain and the validity period", async () => {
    const foreign = await createRootCa({ trustDomain: "other.org" });
    const now = Date.now();
    const l = await leaf({
      issuer: issuerOf(foreign),
      uris: ["spiffe://other.org/x"],
      notBefore: new Date(now - 2 * DAY),
      notAfter: new Date(now - DAY),
    });
    expect(check([l.certDer])).toBe("svid.foreign-trust-domain");
  });

  it("verifies an uncached SVID in well under a millisecond", async () => {
    const l = await leaf();
    for (let i = 0; i < 50; i++) verifySvid([l.certDer], anchors, { trustDomain: TD });
    const n = 300;
    const t = performance.now();
    for (let i = 0; i < n; i++) verifySvid([l.certDer], anchors, { trustDomain: TD });
    const perVerify = (performance.now() - t) / n;
    // Loose bound for a loaded 2-core CI box; typically ~0.4 ms here.
    expect(perVerify).toBeLessThan(2);
  });
});
