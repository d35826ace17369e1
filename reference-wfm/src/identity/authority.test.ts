import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  anchorsFromBundleJson,
  type Issuer,
  importPrivateKeyPem,
  mintCertificate,
  mintSvid,
  pemToDer,
  verifySvid,
} from "@margo/proto/identity";
import { afterEach, describe, expect, it } from "vitest";
import { defaultConfig, type WfmConfig } from "../config.js";
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
    if (e instanceof IdentityError) return e.rule;
    throw e;
  }
}

const chainOf = (pem: string) => pemToDer(pem);

/** The issuing CA straight from disk, to mint SVIDs the WFM itself would never issue. */
async function diskIssuer(c: WfmConfig): Promise<Issuer> {
  const dir = join(c.dataDir, "identity");
  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8"));
  const a = state.authorities[0];
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

describe("rotation", () => {
  it("digest 5.6: rotation keeps old clients valid, issues from the new root, bumps the sequence; retirement drops the old anchor", async () => {
    const c = await config();
    const id = await initIdentity(c);
    open.push(id);
    let changes = 0;
    id.onChange(() => changes++);
    const oldClient = chainOf((await id.mintClient("old")).certificateChainPem);
    const oldTls = id.serverTls();
    const oldEtag = id.spiffeBundle().etag;
    expect(id.verifyClient(oldClient).clientId).toBe("old");

    const rotated = await id.rotateAuthority();
    expect(rotated.spiffeSequence).toBe(2n);
    expect(rotated.anchorFingerprints).toHaveLength(2);
    expect(changes).toBe(1);
    expect(id.spiffeBundle().etag).not.toBe(oldEtag);
    expect(anchorsFromBundleJson(id.spiffeBundle().body).bundle.spiffeSequence).toBe(2n);
    expect(id.verifyClient(oldClient).clientId).toBe("old");
    const newClient = chainOf((await id.mintClient("new")).certificateChainPem);
    expect(id.verifyClient(newClient).clientId).toBe("new");
    // The new WFM SVID and new clients chain to the new root alone.
    const newRoot = chainOf(id.serverTls().anchorsPem).slice(0, 1);
    expect(id.serverTls().certChainPem).not.toBe(oldTls.certChainPem);
    expect(
      verifySvid(chainOf(id.serverTls().certChainPem), newRoot, { trustDomain: TD }).spiffeId,
    ).toBe(id.wfmSpiffeId);
    expect(verifySvid(newClient, newRoot, { trustDomain: TD }).spiffeId).toContain("/client/new");

    const retired = await id.retirePreviousAuthorities();
    expect(retired).toEqual({
      spiffeSequence: 3n,
      anchorFingerprints: [rotated.anchorFingerprints[0]],
    });
    expect(changes).toBe(2);
    expect(ruleOf(() => id.verifyClient(oldClient))).toBe("svid.untrusted-chain");
    expect(id.verifyClient(newClient).clientId).toBe("new");

    // Nothing to retire: no change, no bump, no event.
    expect((await id.retirePreviousAuthorities()).spiffeSequence).toBe(3n);
    expect(changes).toBe(2);

    // Durable: a reload sees sequence 3 and one anchor; old CA files and temp files are gone.
    const again = await loadIdentity(c);
    open.push(again);
    expect(again.spiffeSequence).toBe(3n);
    expect(again.anchorFingerprints()).toEqual(retired.anchorFingerprints);
    expect(again.spiffeBundle().body.equals(id.spiffeBundle().body)).toBe(true);
    const files = await readdir(join(c.dataDir, "identity"));
    expect(files.filter((f) => f.startsWith("ca-"))).toHaveLength(2);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("wfm-svid-"))).toHaveLength(2);
  });

  it("concurrent rotations are serialised: each bumps the sequence exactly once", async () => {
    const id = await init();
    const [a, b] = await Promise.all([id.rotateAuthority(), id.rotateAuthority()]);
    expect([a.spiffeSequence, b.spiffeSequence].sort()).toEqual([2n, 3n]);
    expect(id.anchorFingerprints()).toHaveLength(3);
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
