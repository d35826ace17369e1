import { createHash } from "node:crypto";
import { connect, type TLSSocket } from "node:tls";
import type { admin } from "@margo/proto";
import { anchorsFromBundleJson, derToPem, pemToDer } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonOf, MtlsClient } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let wfm: TestWfm;
const logs: Array<{ event: string; fields: Record<string, unknown> }> = [];

beforeAll(async () => {
  wfm = await startTestWfm({ log: (event, fields) => logs.push({ event, fields }) });
});
afterAll(async () => {
  await wfm?.dispose();
});

/** A client of the MIS endpoints: server TLS only, bundle-anchored, normal hostname check. */
function misClient(anchorsPem: string): MtlsClient {
  return new MtlsClient({
    port: wfm.trustPort,
    trustBundlePem: anchorsPem,
    expectedServerId: wfm.identity.wfmSpiffeId,
  });
}

describe("MIS endpoints", () => {
  it("item 17: discovery over HTTPS without a client certificate, with ETag and 304", async () => {
    const c = misClient(wfm.identity.serverTls().anchorsPem);
    const res = await c.get("/.well-known/margo");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json");
    const doc = jsonOf(res);
    expect(doc.trustDomain).toBe("example.org");
    expect(String(doc.trustBundleUri)).toMatch(
      /^https:\/\/.+\/\.well-known\/spiffe\/bundle\.json$/,
    );
    expect(res.headers.etag).toBe(`"${sha(res.body)}"`);
    const again = await c.get("/.well-known/margo", { "if-none-match": String(res.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    c.close();
  });

  it("item 17/23: the SPIFFE bundle has x509-svid anchors, a sequence, ETag/304, and is never served stale from a cache", async () => {
    const c = misClient(wfm.identity.serverTls().anchorsPem);
    const res = await c.get("/.well-known/spiffe/bundle.json");
    expect(res.status).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers.etag).toBe(`"${sha(res.body)}"`);
    const parsed = anchorsFromBundleJson(res.body);
    expect(parsed.anchors.length).toBeGreaterThan(0);
    const doc = jsonOf(res) as { spiffe_sequence: number; keys: Array<{ use: string }> };
    expect(doc.spiffe_sequence).toBeGreaterThanOrEqual(1);
    expect(doc.keys.every((k) => k.use === "x509-svid")).toBe(true);
    const again = await c.get("/.well-known/spiffe/bundle.json", {
      "if-none-match": `W/${res.headers.etag}`,
    });
    expect(again.status).toBe(304);
    c.close();
  });

  it("other paths are 404 problem+json (about:blank), other methods 405", async () => {
    const c = misClient(wfm.identity.serverTls().anchorsPem);
    const res = await c.get("/.well-known/spiffe/other.json");
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(jsonOf(res).type).toBe("about:blank");
    const post = await c.request("POST", "/.well-known/margo");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET");
    c.close();
  });
});

/** What a client saw of one TLS connection: verification codes are the client refusing the WFM. */
interface TlsOutcome {
  /** The client finished its side of the handshake and verified the WFM. */
  verifiedServer: boolean;
  /** Bytes the server sent after the request (an HTTP answer, if any). */
  reply: string;
  /** The client-side error code (e.g. a certificate verification code), if any. */
  code: string | undefined;
}

/** One GET over a raw TLS connection presenting `creds`, trusting only `anchorsPem`. */
function tlsOutcome(port: number, creds: admin.ClientCredentials, anchorsPem: string) {
  return new Promise<TlsOutcome>((resolve) => {
    let verifiedServer = false;
    let reply = "";
    let code: string | undefined;
    const s = connect({
      host: "127.0.0.1",
      port,
      ca: anchorsPem,
      cert: creds.certificateChainPem,
      key: creds.privateKeyPem,
      minVersion: "TLSv1.3",
      checkServerIdentity: () => undefined,
    });
    s.once("secureConnect", () => {
      verifiedServer = s.authorized;
      s.write("GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\nConnection: close\r\n\r\n");
    });
    s.on("data", (d: Buffer) => {
      reply += d.toString("latin1");
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      code ??= e.code;
    });
    s.once("close", () => resolve({ verifiedServer, reply, code }));
  });
}

/** Node's codes for a chain the client cannot build to an anchor it holds. */
const CANNOT_VERIFY =
  /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_GET_ISSUER_CERT|CERT_SIGNATURE_FAILURE)$/;

describe("rotation without restart (digest 5.6: publish, wait, activate, retire)", () => {
  /** What a device does on refresh: fetch the bundle, trusting only the anchors it holds. */
  async function refreshBundle(heldPem: string): Promise<{ pem: string; sequence: number }> {
    const c = misClient(heldPem);
    const res = await c.get("/.well-known/spiffe/bundle.json");
    c.close();
    expect(res.status).toBe(200);
    return {
      pem: anchorsFromBundleJson(res.body)
        .anchors.map((a) => derToPem(a))
        .join(""),
      sequence: (jsonOf(res) as { spiffe_sequence: number }).spiffe_sequence,
    };
  }
  async function status(creds: admin.ClientCredentials, bundlePem: string) {
    const c = wfm.client({ ...creds, trustBundlePem: bundlePem });
    try {
      return await c.get("/api/v1/deployments");
    } finally {
      c.close();
    }
  }

  it("item 9: a device keeping only its client-add bundle stays connected through publish and activate; after refreshing it stays through retire; one that never refreshed is cut off only at retire", async () => {
    const follower = await wfm.admit("rot-follower");
    const stale = await wfm.admit("rot-stale");
    const r0 = await status(follower, follower.trustBundlePem);
    expect(r0.status).toBe(200);
    const seq0 = (await refreshBundle(follower.trustBundlePem)).sequence;

    // Publish: the bundle grows, nothing a device verifies changes.
    await wfm.core.publishNextAuthority();
    for (const d of [follower, stale]) {
      const r = await status(d, d.trustBundlePem);
      expect(r.status).toBe(200);
      expect(r.serverSerial).toBe(r0.serverSerial);
    }
    // The follower refreshes over a connection its old anchor still verifies.
    const refreshed = await refreshBundle(follower.trustBundlePem);
    expect(refreshed.sequence).toBe(seq0 + 1);
    expect(pemToDer(refreshed.pem)).toHaveLength(2);

    // Activation before the refresh hint has passed is refused with the time it becomes allowed.
    const early = await wfm.core.activateNextAuthority().catch((e: unknown) => e);
    expect(early).toMatchObject({ kind: "conflict" });
    expect(String((early as Error).message)).toMatch(/allowed from \S+Z/);
    await wfm.core.activateNextAuthority(true);

    // New WFM SVID; both devices still connect (the stale one through the cross-signed root).
    const r1 = await status(follower, refreshed.pem);
    expect(r1.status).toBe(200);
    expect(r1.serverSerial).not.toBe(r0.serverSerial);
    expect(r1.serverSpiffeId).toBe(wfm.identity.wfmSpiffeId);
    expect((await status(stale, stale.trustBundlePem)).status).toBe(200);
    // The bundle did not change at activation: same anchors, same sequence.
    expect((await refreshBundle(refreshed.pem)).sequence).toBe(seq0 + 1);

    // The follower renews its SVID from the new root, keeping the bundle it refreshed.
    const renewed = await wfm.core.issueClientCredentials("rot-follower");
    expect((await status(renewed, refreshed.pem)).status).toBe(200);

    await wfm.core.retirePreviousAuthorities();
    const after = await status(renewed, refreshed.pem);
    expect(after.status).toBe(200);
    expect(after.serverSerial).toBe(r1.serverSerial);
    // Only now is the device that never refreshed cut off, and by its own side: holding only the
    // old anchor it cannot verify the WFM any more, even presenting an SVID the WFM accepts.
    const staleRenewed = await wfm.core.issueClientCredentials("rot-stale");
    expect((await status(staleRenewed, refreshed.pem)).status).toBe(200);
    for (const svid of [staleRenewed, stale]) {
      const cut = await tlsOutcome(wfm.managementPort, svid, stale.trustBundlePem);
      expect(cut.verifiedServer).toBe(false);
      expect(cut.code).toMatch(CANNOT_VERIFY);
      expect(cut.reply).toBe("");
    }
    expect((await refreshBundle(refreshed.pem)).sequence).toBe(seq0 + 2);
  });

  it("item 9: retiring the old anchor refuses old SVIDs, including on a live keep-alive connection", async () => {
    const oldCreds = await wfm.admit("retire-client");
    await wfm.core.publishNextAuthority();
    await wfm.core.activateNextAuthority(true);
    const anchors = wfm.identity.serverTls().anchorsPem;
    // A keep-alive connection authenticated by the soon-retired anchor.
    const live: TLSSocket = await new Promise((resolve, reject) => {
      const s = connect({
        host: "127.0.0.1",
        port: wfm.managementPort,
        ca: anchors,
        cert: oldCreds.certificateChainPem,
        key: oldCreds.privateKeyPem,
        checkServerIdentity: () => undefined,
      });
      s.once("secureConnect", () => resolve(s));
      s.once("error", reject);
    });
    const closed = new Promise<void>((resolve) => live.once("close", () => resolve()));
    live.on("error", () => undefined);
    await wfm.core.retirePreviousAuthorities();
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("live connection survived the retired anchor")), 3000),
      ),
    ]);
    // The WFM side: the device verifies the WFM (it holds the new anchors), yet the WFM closes
    // the connection its old-root SVID opened without an answer and says why.
    const newAnchors = wfm.identity.serverTls().anchorsPem;
    logs.length = 0;
    const refused = await tlsOutcome(wfm.managementPort, oldCreds, newAnchors);
    expect(refused.verifiedServer).toBe(true);
    expect(refused.code ?? "").not.toMatch(CANNOT_VERIFY);
    expect(refused.reply).toBe("");
    expect(
      logs.some(
        (l) => l.event === "tls-handshake-failed" || l.event === "client-certificate-refused",
      ),
    ).toBe(true);
    const renewed = await wfm.core.issueClientCredentials("retire-client");
    expect((await wfm.client(renewed).get("/api/v1/deployments")).status).toBe(200);
  });
});
