import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admin } from "@margo/proto";
import {
  anchorsFromBundleJson,
  type Issuer,
  importPrivateKeyPem,
  mintCertificate,
  mintSvid,
  pemToDer,
  SvidVerificationError,
  verifySvid,
} from "@margo/proto/identity";
import { afterEach, describe, expect, it } from "vitest";
import { defaultConfig, type WfmConfig } from "../config.js";
import { WfmError } from "../core/errors.js";
import { type FileIdentity, initIdentity, loadIdentity } from "./authority.js";
import { IdentityError } from "./types.js";

const TD = "example.org";
const open: FileIdentity[] = [];

afterEach(() => {
  for (const i of open.splice(0)) i.close();
});

async function config(over: Partial<WfmConfig> = {}): Promise<WfmConfig> {
  const dir = await mkdtemp(join(tmpdir(), "wfm-identity-"));
  return {
    ...defaultConfig(dir, { trustDomain: TD, wfmId: "wfm-1" }),
    trustPublicUrl: "https://mis.example.org:8443/",
    hostnames: ["wfm.example.org", "127.0.0.1"],
    ...over,
  };
}

async function init(over: Partial<WfmConfig> = {}): Promise<FileIdentity> {
  const id = await initIdentity(await config(over));
  open.push(id);
  return id;
}

function ruleOf(f: () => unknown): string {
  try {
    f();
    return "accepted";
  } catch (e) {
    if (e instanceof IdentityError || e instanceof SvidVerificationError) return e.rule;
    throw e;
  }
}

const chainOf = (pem: string) => pemToDer(pem);

/** The issuing CA straight from disk, to mint SVIDs the WFM itself would never issue. */
async function diskIssuer(c: WfmConfig): Promise<Issuer> {
  const dir = join(c.dataDir, "identity");
  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8"));
  const a = state.authorities.find((x: { role: string }) => x.role === "issuing");
  const certDer = pemToDer(await readFile(join(dir, a.cert), "utf8"))[0] as Buffer;
  return {
    certDer,
    privateKey: await importPrivateKeyPem(await readFile(join(dir, a.key), "utf8")),
  };
}

describe("init and load", () => {
  it("creates a 0700 folder of 0600 files, refuses re-init, and reloads the same trust domain", async () => {
    const c = await config();
    const id = await initIdentity(c);
    open.push(id);
    const dir = join(c.dataDir, "identity");
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const files = await readdir(dir);
    expect(files).toContain("state.json");
    expect(files.filter((f) => f.endsWith(".key"))).toHaveLength(2); // CA + WFM SVID
    for (const f of files) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);

    await expect(initIdentity(c)).rejects.toMatchObject({ rule: "identity.exists" });

    const again = await loadIdentity(c);
    open.push(again);
    expect(again.serverTls()).toEqual(id.serverTls());
    expect(again.spiffeBundle()).toEqual(id.spiffeBundle());
    expect(again.spiffeSequence).toBe(1n);
    // The reloaded CA key still issues SVIDs the first instance accepts.
    const creds = await again.mintClient("dev-1");
    expect(id.verifyClient(chainOf(creds.certificateChainPem)).clientId).toBe("dev-1");
  });

  it("refuses a data dir of another trust domain or wfm-id, and an empty one", async () => {
    const c = await config();
    open.push(await initIdentity(c));
    await expect(loadIdentity({ ...c, wfmId: "wfm-2" })).rejects.toMatchObject({
      rule: "identity.config-mismatch",
    });
    await expect(loadIdentity(await config())).rejects.toMatchObject({ rule: "identity.missing" });
  });

  it("item 16: refuses a trust domain or wfm-id that cannot form a MIAF name", async () => {
    await expect(init({ wfmId: ".." })).rejects.toMatchObject({ rule: "identity.wfm-id" });
    await expect(init({ trustDomain: "Example.org" })).rejects.toMatchObject({
      rule: "identity.trust-domain",
    });
  });
});

describe("the WFM SVID", () => {
  it("item 12: is spiffe://<td>/margo/wfm/<wfm-id> with the hostnames as extra SANs, chaining to the bundle", async () => {
    const id = await init();
    const tls = id.serverTls();
    const leaf = chainOf(tls.certChainPem);
    expect(leaf).toHaveLength(1);
    const x = new X509Certificate(leaf[0] as Buffer);
    expect(x.subjectAltName).toBe(
      "URI:spiffe://example.org/margo/wfm/wfm-1, DNS:wfm.example.org, IP Address:127.0.0.1",
    );
    expect(x.checkPrivateKey(createPrivateKey(tls.keyPem))).toBe(true);
    expect(verifySvid(leaf, chainOf(tls.anchorsPem), { trustDomain: TD }).spiffeId).toBe(
      id.wfmSpiffeId,
    );
    // The WFM's own SVID is not a client.
    expect(ruleOf(() => id.verifyClient(leaf))).toBe("identity.not-wfm-client");
  });
});

describe("client verification", () => {
  it("item 6: a minted client verifies and yields its client id from the certificate only", async () => {
    const id = await init();
    const creds = await id.mintClient("device-7");
    expect(creds.spiffeId).toBe("spiffe://example.org/margo/wfm/wfm-1/client/device-7");
    const v = id.verifyClient(chainOf(creds.certificateChainPem));
    expect(v).toEqual({
      clientId: "device-7",
      spiffeId: creds.spiffeId,
      notAfter: creds.notAfter,
    });
    const x = new X509Certificate(chainOf(creds.certificateChainPem)[0] as Buffer);
    expect(x.checkPrivateKey(createPrivateKey(creds.privateKeyPem))).toBe(true);
    expect(creds.spiffeBundleJson.equals(id.spiffeBundle().body)).toBe(true);
    expect(creds.trustBundlePem).toBe(id.serverTls().anchorsPem);
    // Default lifetime from config (30 days), within the back-dating minute.
    const days = ((creds.notAfter?.getTime() ?? 0) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
  });

  it("item 6: refuses another WFM's client, an operator and other /margo/ shapes in our domain", async () => {
    const c = await config();
    const id = await initIdentity(c);
    open.push(id);
    const issuer = await diskIssuer(c);
    const mint = async (spiffeId: string) =>
      chainOf((await mintSvid({ issuer, spiffeId })).certPem);
    expect(ruleOf(() => id.verifyClient([]))).toBe("svid.empty-chain");
    const foreignWfm = await mint("spiffe://example.org/margo/wfm/wfm-2/client/device-7");
    expect(ruleOf(() => id.verifyClient(foreignWfm))).toBe("identity.foreign-wfm");
    const op = chainOf((await id.mintOperator("alice")).certificateChainPem);
    expect(ruleOf(() => id.verifyClient(op))).toBe("identity.not-wfm-client");
    for (const other of [
      "spiffe://example.org/margo/wfm/wfm-1/client/device-7/x",
      "spiffe://example.org/margo/wfm/wfm-1/Client/device-7",
      "spiffe://example.org/margo/wfm/wfm-1/client",
      "spiffe://example.org/client/device-7",
    ]) {
      const chain = await mint(other);
      expect(
        ruleOf(() => id.verifyClient(chain)),
        other,
      ).toBe("identity.not-wfm-client");
    }
  });

  it("item 9: refuses a client of another trust domain and of another CA of our domain", async () => {
    const id = await init();
    const foreignTd = await init({ trustDomain: "other.org" });
    const sameTdOtherCa = await init();
    const a = await foreignTd.mintClient("device-7");
    const b = await sameTdOtherCa.mintClient("device-7");
    expect(ruleOf(() => id.verifyClient(chainOf(a.certificateChainPem)))).toBe(
      "svid.foreign-trust-domain",
    );
    expect(ruleOf(() => id.verifyClient(chainOf(b.certificateChainPem)))).toBe(
      "svid.untrusted-chain",
    );
  });

  it("item 9: refuses an expired client, also when the chain was verified (cached) before", async () => {
    const id = await init();
    const creds = await id.mintClient("device-7", 3600);
    const chain = chainOf(creds.certificateChainPem);
    expect(id.verifyClient(chain).clientId).toBe("device-7");
    const later = new Date(Date.now() + 2 * 3600_000);
    expect(ruleOf(() => id.verifyClient(chain, later))).toBe("svid.expired");
    const earlier = new Date(Date.now() - 3600_000);
    expect(ruleOf(() => id.verifyClient(chain, earlier))).toBe("svid.not-yet-valid");
  });

  it("item 10: refuses a CA-flagged leaf and a keyCertSign leaf signed by our own CA", async () => {
    const c = await config();
    const id = await initIdentity(c);
    open.push(id);
    const issuer = await diskIssuer(c);
    const base = {
      subject: "O=example.org, CN=bad",
      issuer,
      uris: ["spiffe://example.org/margo/wfm/wfm-1/client/device-7"],
    };
    const caLeaf = await mintCertificate({ ...base, ca: true, keyUsage: ["digitalSignature"] });
    const kcs = await mintCertificate({ ...base, ca: false, keyUsage: ["keyCertSign"] });
    expect(ruleOf(() => id.verifyClient([caLeaf.certDer]))).toBe("svid.ca-leaf");
    expect(ruleOf(() => id.verifyClient([kcs.certDer]))).toBe("svid.key-cert-sign");
  });

  it("item 16: refuses to mint a client or operator whose id is not a valid segment", async () => {
    const id = await init();
    await expect(id.mintClient("..")).rejects.toMatchObject({ rule: "identity.client-id" });
    await expect(id.mintClient("a b")).rejects.toBeInstanceOf(IdentityError);
    await expect(id.mintOperator("")).rejects.toMatchObject({ rule: "identity.operator-name" });
  });

  it("verifies a client in well under a millisecond (cached) and measures the uncached cost", async () => {
    const id = await init();
    const chains = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        chainOf((await id.mintClient(`d${i}`)).certificateChainPem),
      ),
    );
    let t = performance.now();
    for (const ch of chains) id.verifyClient(ch);
    const uncachedMs = (performance.now() - t) / chains.length;
    t = performance.now();
    for (let r = 0; r < 100; r++) for (const ch of chains) id.verifyClient(ch);
    const cachedMs = (performance.now() - t) / (100 * chains.length);
    console.log(
      `verifyClient: uncached ${uncachedMs.toFixed(3)} ms, cached ${cachedMs.toFixed(4)} ms`,
    );
    expect(cachedMs).toBeLessThan(0.1);
    expect(uncachedMs).toBeLessThan(3);
  });
});

describe("operators", () => {
  it("verifyOperator accepts spiffe://<td>/operator/<name> and refuses clients", async () => {
    const id = await init();
    const op = await id.mintOperator("alice");
    expect(op.spiffeId).toBe("spiffe://example.org/operator/alice");
    expect(id.verifyOperator(chainOf(op.certificateChainPem))).toEqual({
      name: "alice",
      spiffeId: op.spiffeId,
      // The end of the verified path (here the leaf: the root outlives it).
      notAfter: new Date(new X509Certificate(chainOf(op.certificateChainPem)[0] as Buffer).validTo),
    });
    const client = await id.mintClient("device-7");
    expect(ruleOf(() => id.verifyOperator(chainOf(client.certificateChainPem)))).toBe(
      "identity.not-operator",
    );
  });
});

describe("MIS documents", () => {
  it("item 17: discovery names the trust domain and the https bundle URI, with a sha256 ETag", async () => {
    const id = await init();
    const d = id.discoveryDocument();
    expect(JSON.parse(d.body.toString("utf8"))).toEqual({
      trustDomain: TD,
      trustBundleUri: "https://mis.example.org:8443/.well-known/spiffe/bundle.json",
    });
    expect(d.etag).toBe(`"sha256:${createHash("sha256").update(d.body).digest("hex")}"`);
  });

  it("item 17: the bundle holds the anchor as an x509-svid JWK, sequence 1 and the refresh hint", async () => {
    const id = await init({ bundleRefreshHintSeconds: 120 });
    const b = id.spiffeBundle();
    const { anchors, bundle } = anchorsFromBundleJson(b.body);
    expect(bundle.spiffeSequence).toBe(1n);
    expect(bundle.spiffeRefreshHint).toBe(120n);
    expect(anchors.map((a) => a.toString("base64"))).toEqual(
      chainOf(id.serverTls().anchorsPem).map((a) => a.toString("base64")),
    );
    expect(b.etag).toBe(`"sha256:${createHash("sha256").update(b.body).digest("hex")}"`);
  });
});

describe("rotation (digest 5.6: publish, wait, activate, retire)", () => {
  const der = (pem: string) => chainOf(pem);
  const serverChain = (id: FileIdentity) => der(id.serverTls().certChainPem);
  const wfmVerifies = (id: FileIdentity, anchors: Buffer[]) =>
    ruleOf(() => verifySvid(serverChain(id), anchors, { trustDomain: TD }));

  it("publish changes only the bundle; activate switches issuance and keeps old-bundle devices verifying; retire cuts them off", async () => {
    const c = await config({ bundleRefreshHintSeconds: 3600 });
    const id = await initIdentity(c);
    open.push(id);
    let changes = 0;
    id.onChange(() => changes++);
    const oldAnchors = der(id.serverTls().anchorsPem);
    const oldClient = chainOf((await id.mintClient("old")).certificateChainPem);
    const oldChainPem = id.serverTls().certChainPem;

    const published = await id.publishNextAuthority();
    expect(published.spiffeSequence).toBe(2n);
    expect(published.anchors.map((a) => a.role)).toEqual([
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING,
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_NEXT,
    ]);
    const [oldFp, newFp] = published.anchorFingerprints;
    expect(published.activationAllowedAt?.getTime()).toBe(
      (published.anchors[1]?.publishedAt?.getTime() ?? 0) + 3600_000,
    );
    expect(changes).toBe(1);
    // Issuance and the WFM SVID stay on the old root: a device with the old bundle notices nothing.
    expect(id.serverTls().certChainPem).toBe(oldChainPem);
    expect(wfmVerifies(id, oldAnchors)).toBe("accepted");
    const midClient = chainOf((await id.mintClient("mid")).certificateChainPem);
    expect(ruleOf(() => verifySvid(midClient, oldAnchors, { trustDomain: TD }))).toBe("accepted");
    const bundleAfterPublish = id.spiffeBundle();
    expect(anchorsFromBundleJson(bundleAfterPublish.body).anchors).toHaveLength(2);

    // Too early without force: the reason names when it becomes allowed.
    const early = await id.activateNextAuthority().catch((e: unknown) => e);
    expect(early).toBeInstanceOf(WfmError);
    expect((early as WfmError).kind).toBe("conflict");
    expect((early as WfmError).message).toContain(
      published.activationAllowedAt?.toISOString() ?? "?",
    );
    expect(id.serverTls().certChainPem).toBe(oldChainPem);

    const activated = await id.activateNextAuthority(true);
    expect(activated.anchorFingerprints).toEqual([newFp, oldFp]);
    expect(activated.anchors.map((a) => a.role)).toEqual([
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING,
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_PREVIOUS,
    ]);
    expect(activated.activationAllowedAt).toBeUndefined();
    expect(changes).toBe(2);
    // Same anchors, so the same bundle bytes and sequence: devices need not refetch.
    expect(activated.spiffeSequence).toBe(2n);
    expect(id.spiffeBundle().body.equals(bundleAfterPublish.body)).toBe(true);
    // The new WFM SVID: leaf plus the new root cross-signed by the old one.
    const newRoot = oldAnchors[0]
      ? der(id.serverTls().anchorsPem).filter((a) => !a.equals(oldAnchors[0] as Buffer))
      : [];
    expect(serverChain(id)).toHaveLength(2);
    expect(wfmVerifies(id, newRoot)).toBe("accepted");
    expect(wfmVerifies(id, oldAnchors)).toBe("accepted");
    const newClient = chainOf((await id.mintClient("new")).certificateChainPem);
    expect(ruleOf(() => verifySvid(newClient, newRoot, { trustDomain: TD }))).toBe("accepted");
    expect(ruleOf(() => verifySvid(newClient, oldAnchors, { trustDomain: TD }))).toBe(
      "svid.untrusted-chain",
    );
    expect(id.verifyClient(oldClient).clientId).toBe("old");

    const retired = await id.retirePreviousAuthorities();
    expect(retired.spiffeSequence).toBe(3n);
    expect(retired.anchorFingerprints).toEqual([newFp]);
    expect(changes).toBe(3);
    expect(ruleOf(() => id.verifyClient(oldClient))).toBe("svid.untrusted-chain");
    expect(id.verifyClient(newClient).clientId).toBe("new");
    expect(serverChain(id)).toHaveLength(1);
    expect(wfmVerifies(id, oldAnchors)).toBe("svid.untrusted-chain");
    expect(wfmVerifies(id, newRoot)).toBe("accepted");

    // Nothing to retire: no change, no bump, no event.
    expect((await id.retirePreviousAuthorities()).spiffeSequence).toBe(3n);
    expect(changes).toBe(3);

    // Durable: a reload sees sequence 3 and one anchor; old CA, cross and temp files are gone.
    const again = await loadIdentity(c);
    open.push(again);
    expect(again.spiffeSequence).toBe(3n);
    expect(again.anchorFingerprints()).toEqual(retired.anchorFingerprints);
    expect(again.spiffeBundle().body.equals(id.spiffeBundle().body)).toBe(true);
    const files = await readdir(join(c.dataDir, "identity"));
    expect(files.filter((f) => f.startsWith("ca-"))).toHaveLength(2);
    expect(files.filter((f) => f.startsWith("xs-"))).toEqual([]);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("wfm-svid-"))).toHaveLength(2);
  });

  it("activation is refused with nothing published, allowed without force once the refresh hint has passed", async () => {
    const id = await init({ bundleRefreshHintSeconds: 1 });
    const none = await id.activateNextAuthority(true).catch((e: unknown) => e);
    expect(none).toMatchObject({ kind: "conflict" });
    expect((none as Error).message).toContain("ca publish");
    const before = id.serverTls().certChainPem;
    await id.publishNextAuthority();
    await expect(id.activateNextAuthority()).rejects.toMatchObject({ kind: "conflict" });
    await new Promise((r) => setTimeout(r, 1100));
    const done = await id.activateNextAuthority();
    expect(done.anchors[0]?.role).toBe(admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING);
    expect(id.serverTls().certChainPem).not.toBe(before);
  });

  it("one rotation at a time: a second publish is refused until activation; retire keeps the pending root", async () => {
    const id = await init();
    const [a, b] = await Promise.allSettled([id.publishNextAuthority(), id.publishNextAuthority()]);
    expect([a.status, b.status].sort()).toEqual(["fulfilled", "rejected"]);
    expect(id.spiffeSequence).toBe(2n);
    const retired = await id.retirePreviousAuthorities();
    expect(retired.anchorFingerprints).toHaveLength(2);
    expect(retired.spiffeSequence).toBe(2n);
    await id.activateNextAuthority(true);
    // The next rotation may start while the previous root is still in the bundle.
    const third = await id.publishNextAuthority();
    expect(third.spiffeSequence).toBe(3n);
    expect(third.anchors.map((x) => x.role)).toEqual([
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING,
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_NEXT,
      admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_PREVIOUS,
    ]);
    const r = await id.retirePreviousAuthorities();
    expect(r.anchorFingerprints).toEqual(third.anchorFingerprints.slice(0, 2));
    expect(r.spiffeSequence).toBe(4n);
  });

  it("a restart between the steps resumes where the rotation stood", async () => {
    const c = await config({ bundleRefreshHintSeconds: 3600 });
    const first = await initIdentity(c);
    first.close();
    const oldAnchors = der(first.serverTls().anchorsPem);
    const published = await first.publishNextAuthority();

    const afterPublish = await loadIdentity(c);
    open.push(afterPublish);
    expect(afterPublish.authorityStatus()).toEqual(published);
    expect(afterPublish.serverTls().certChainPem).toBe(first.serverTls().certChainPem);
    // Still issuing from the old root after the restart.
    const client = chainOf((await afterPublish.mintClient("c")).certificateChainPem);
    expect(ruleOf(() => verifySvid(client, oldAnchors, { trustDomain: TD }))).toBe("accepted");
    // The wait is measured from publication, not from the restart.
    await expect(afterPublish.activateNextAuthority()).rejects.toMatchObject({ kind: "conflict" });
    const activated = await afterPublish.activateNextAuthority(true);

    const afterActivate = await loadIdentity(c);
    open.push(afterActivate);
    expect(afterActivate.authorityStatus()).toEqual(activated);
    expect(afterActivate.serverTls().certChainPem).toBe(afterPublish.serverTls().certChainPem);
    expect(serverChain(afterActivate)).toHaveLength(2);
    const fresh = chainOf((await afterActivate.mintClient("d")).certificateChainPem);
    expect(ruleOf(() => verifySvid(fresh, oldAnchors, { trustDomain: TD }))).toBe(
      "svid.untrusted-chain",
    );
    const retired = await afterActivate.retirePreviousAuthorities();
    const afterRetire = await loadIdentity(c);
    open.push(afterRetire);
    expect(afterRetire.authorityStatus()).toEqual(retired);
    expect(serverChain(afterRetire)).toHaveLength(1);
  });

  it("reads a format 1 state (issuing first, no roles) and writes format 2 on the next change", async () => {
    const c = await config();
    const id = await initIdentity(c);
    id.close();
    await id.publishNextAuthority();
    await id.activateNextAuthority(true);
    const file = join(c.dataDir, "identity", "state.json");
    const v2 = JSON.parse(await readFile(file, "utf8"));
    const issuingFirst = [...v2.authorities]
      .reverse()
      .map((a: { fingerprint: string; cert: string; key: string }) => ({
        fingerprint: a.fingerprint,
        cert: a.cert,
        key: a.key,
      }));
    await writeFile(file, JSON.stringify({ ...v2, format: 1, authorities: issuingFirst }));
    const old = await loadIdentity(c);
    open.push(old);
    expect(old.anchorFingerprints()).toEqual(id.anchorFingerprints());
    expect(old.spiffeBundle().body.equals(id.spiffeBundle().body)).toBe(true);
    await old.retirePreviousAuthorities();
    expect(JSON.parse(await readFile(file, "utf8")).format).toBe(2);
    expect(old.anchorFingerprints()).toEqual(id.anchorFingerprints().slice(0, 1));
  });

  it("renews the WFM SVID at 2/3 of its lifetime and tells listeners", async () => {
    const id = await init({ wfmSvidLifetimeSeconds: 3 });
    const before = id.wfmSvidNotAfter;
    const changed = new Promise<void>((resolve) => id.onChange(resolve));
    const t = Date.now();
    await changed;
    const waited = Date.now() - t;
    expect(waited).toBeGreaterThan(1000);
    expect(waited).toBeLessThan(3000);
    expect(id.wfmSvidNotAfter.getTime()).toBeGreaterThan(before.getTime());
    expect(id.spiffeSequence).toBe(1n); // renewal is not an anchor change
  });
});
