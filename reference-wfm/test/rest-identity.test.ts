import { createHash } from "node:crypto";
import { connect, type TLSSocket } from "node:tls";
import { anchorsFromBundleJson } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonOf, MtlsClient } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let wfm: TestWfm;

beforeAll(async () => {
  wfm = await startTestWfm();
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

describe("rotation without restart", () => {
  it("item 9: after rotateAuthority new connections get the new SVID, old and new client SVIDs both work until retire", async () => {
    const oldCreds = await wfm.admit("rot-client");
    const before = wfm.client(oldCreds);
    const r0 = await before.get("/api/v1/deployments");
    expect(r0.status).toBe(200);
    const oldBundle = await misClient(oldCreds.trustBundlePem).get(
      "/.well-known/spiffe/bundle.json",
    );
    const seq0 = (jsonOf(oldBundle) as { spiffe_sequence: number }).spiffe_sequence;

    await wfm.core.rotateAuthority();

    // The client refreshes its bundle (both anchors now) and keeps its old SVID. The WFM SVID is
    // re-issued from the new root at once (admin contract), so the MIS fetch must already trust
    // the new anchor: a device holding only the old bundle needs its initial-trust path here.
    const fresh = await misClient(wfm.identity.serverTls().anchorsPem).get(
      "/.well-known/spiffe/bundle.json",
      {
        "if-none-match": String(oldBundle.headers.etag),
      },
    );
    expect(fresh.status).toBe(200);
    expect((jsonOf(fresh) as { spiffe_sequence: number }).spiffe_sequence).toBe(seq0 + 1);
    const bothAnchors = wfm.identity.serverTls().anchorsPem;
    expect(anchorsFromBundleJson(fresh.body).anchors.length).toBe(2);

    const oldSvidNewBundle = wfm.client({ ...oldCreds, trustBundlePem: bothAnchors });
    const r1 = await oldSvidNewBundle.get("/api/v1/deployments");
    expect(r1.status).toBe(200);
    expect(r1.serverSerial).not.toBe(r0.serverSerial);
    expect(r1.serverSpiffeId).toBe(wfm.identity.wfmSpiffeId);

    const newCreds = await wfm.core.issueClientCredentials("rot-client");
    const r2 = await wfm.client(newCreds).get("/api/v1/deployments");
    expect(r2.status).toBe(200);
  });

  it("item 9: retiring the old anchor refuses old SVIDs, including on a live keep-alive connection", async () => {
    const oldCreds = await wfm.admit("retire-client");
    await wfm.core.rotateAuthority();
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
    const newAnchors = wfm.identity.serverTls().anchorsPem;
    const stale = wfm.client({ ...oldCreds, trustBundlePem: newAnchors });
    await expect(stale.get("/api/v1/deployments")).rejects.toThrow();
    const renewed = await wfm.core.issueClientCredentials("retire-client");
    expect((await wfm.client(renewed).get("/api/v1/deployments")).status).toBe(200);
  });
});
