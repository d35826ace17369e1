import { createHash, type X509Certificate } from "node:crypto";
import { request } from "node:https";
import type { TLSSocket } from "node:tls";
import { gunzipSync } from "node:zlib";
import { decodeStateManifest } from "@margo/proto/wire";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCheckTools } from "../src/core/tools.js";
import {
  type RunningInstrumentedWfm,
  startInstrumentedWfm,
} from "../src/suites/device/instrumented-wfm/index.js";

/**
 * The instrumented WFM speaks the rc.3 wire (as a device sees it through real mTLS) and lies
 * exactly as each fault says. A client here plays the device with the credentials the WFM hands
 * out; the manifest is decoded with the proto wire codec, the bundle untarred by hand.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  protocol: string | null;
  peerSan: string;
}

let wfm: RunningInstrumentedWfm;

function call(
  method: string,
  path: string,
  opts: {
    body?: string;
    headers?: Record<string, string>;
    cert?: { chainPem: string; keyPem: string } | null;
    ca?: string;
    maxVersion?: "TLSv1.2" | "TLSv1.3";
    base?: string;
  } = {},
): Promise<Answer> {
  const creds = wfm.clientCredentials();
  const cert =
    opts.cert === null
      ? undefined
      : (opts.cert ?? { chainPem: creds.chainPem, keyPem: creds.keyPem });
  return new Promise((resolve, reject) => {
    const req = request(
      `${opts.base ?? wfm.url}${path}`,
      {
        method,
        headers: opts.headers ?? {},
        ca: opts.ca ?? creds.anchorsPem,
        ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}),
        agent: false,
        ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const sock = res.socket as TLSSocket;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            protocol: sock.getProtocol?.() ?? null,
            peerSan: sock.getPeerX509Certificate?.()?.subjectAltName ?? "",
          });
        });
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function untar(gz: Buffer): Map<string, string> {
  const tar = gunzipSync(gz);
  const out = new Map<string, string>();
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar
      .subarray(off, off + 100)
      .toString("utf8")
      .replace(/\0.*$/s, "");
    if (!name) break;
    const size = Number.parseInt(tar.subarray(off + 124, off + 136).toString("ascii"), 8);
    out.set(name, tar.subarray(off + 512, off + 512 + size).toString("utf8"));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const yamlOf = (id: string) => `id: ${id}\nmetadata:\n  name: n\n`;
const tools = () => createCheckTools({ signal: new AbortController().signal }).tools;

beforeAll(async () => {
  wfm = await startInstrumentedWfm({ trustDomain: "inst.test", wfmId: "wfm-x" });
});
afterAll(async () => {
  await wfm?.close();
});
beforeEach(async () => {
  await wfm.reset();
});

describe("instrumented WFM wire", () => {
  it("serves an empty manifest (bundle null) with ETag, 304 on If-None-Match, 406 on a foreign Accept", async () => {
    const a = await call("GET", "/api/v1/deployments");
    expect(a.status).toBe(200);
    expect(a.protocol).toBe("TLSv1.3");
    expect(a.peerSan).toBe(`URI:${wfm.spiffeId}, DNS:localhost, IP Address:127.0.0.1`);
    expect(a.headers["content-type"]).toBe("application/vnd.margo.manifest.v1+json");
    expect(a.headers.etag).toBe(`"${sha(a.body)}"`);
    expect(JSON.parse(a.body.toString())).toEqual({
      manifestVersion: 1,
      bundle: null,
      deployments: [],
    });
    const b = await call("GET", "/api/v1/deployments", {
      headers: { "if-none-match": String(a.headers.etag) },
    });
    expect(b.status).toBe(304);
    expect(b.body.length).toBe(0);
    const c = await call("GET", "/api/v1/deployments", { headers: { accept: "text/html" } });
    expect(c.status).toBe(406);
    expect(JSON.parse(c.body.toString()).type).toBe(
      "https://docs.margo.org/specification/problem-types#server-cannot-generate-response",
    );
    const reqs = wfm.requests();
    expect(reqs.map((r) => r.status)).toEqual([200, 304, 406]);
    expect(reqs[0]?.clientChainLength).toBeGreaterThanOrEqual(2);
    expect(reqs[0]?.tlsProtocol).toBe("TLSv1.3");
  });

  it("publishes honest digests: YAML and bundle by digest, versions increase", async () => {
    const p = wfm.publish([
      { deploymentId: "b-dep", yaml: yamlOf("b-dep") },
      { deploymentId: "a-dep", yaml: yamlOf("a-dep") },
    ]);
    expect(p.manifestVersion).toBe(2n);
    const m = await call("GET", "/api/v1/deployments");
    const decoded = decodeStateManifest(m.body);
    expect(decoded.problems).toEqual([]);
    expect(decoded.value?.manifestVersion).toBe(2n);
    for (const d of p.deployments) {
      const y = await call("GET", d.url);
      expect(y.status).toBe(200);
      expect(sha(y.body)).toBe(d.digest);
      expect(y.headers["content-type"]).toBe("application/yaml");
      expect(y.headers.etag).toBe(`"${d.digest}"`);
    }
    const bundle = p.bundle;
    if (!bundle) throw new Error("no bundle");
    const bz = await call("GET", bundle.url);
    expect(sha(bz.body)).toBe(bundle.digest);
    expect([...untar(bz.body).keys()]).toEqual(["a-dep.yaml", "b-dep.yaml"]);
    expect(untar(bz.body).get("a-dep.yaml")).toBe(yamlOf("a-dep"));
    expect(wfm.publish([]).manifestVersion).toBe(3n);
    expect((await call("GET", `/api/v1/bundles/sha256:${"0".repeat(64)}`)).status).toBe(404);
  });

  it("records status (201 then 200) and capabilities (201, 200, 204)", async () => {
    const s1 = await call("POST", "/api/v1/deployments/d1/status", {
      body: '{"deploymentId":"d1"}',
    });
    const s2 = await call("POST", "/api/v1/deployments/d1/status", {
      body: '{"deploymentId":"d1"}',
    });
    expect([s1.status, s2.status]).toEqual([201, 200]);
    expect((await call("POST", "/api/v1/deployments/d1/status", { body: "nope" })).status).toBe(
      400,
    );
    const c1 = await call("PUT", "/api/v1/capabilities/dev1", { body: '{"deviceId":"dev1"}' });
    const c2 = await call("PUT", "/api/v1/capabilities/dev1", { body: '{"deviceId":"dev1"}' });
    const c3 = await call("DELETE", "/api/v1/capabilities/dev1");
    expect([c1.status, c2.status, c3.status]).toEqual([201, 200, 204]);
    expect(wfm.statuses().map((s) => s.deploymentId)).toEqual(["d1", "d1"]);
    const st = wfm.statuses()[0];
    expect(wfm.requests().find((r) => r.seq === st?.seq)?.path).toBe(
      "/api/v1/deployments/d1/status",
    );
    expect(wfm.capabilities().map((c) => c.deviceId)).toEqual(["dev1", "dev1"]);
  });

  it("refuses a client certificate of another CA at TLS and an earlier scope's client with 403", async () => {
    const old = wfm.clientCredentials();
    await wfm.reset();
    const stale = await call("GET", "/api/v1/deployments", { cert: old });
    expect(stale.status).toBe(403);
    expect(wfm.requests()).toEqual([]);
    await expect(call("GET", "/api/v1/deployments", { cert: null })).rejects.toThrow();
    // A leaf without its intermediate does not chain to the WFM's root.
    const leafOnly = old.chainPem.split(/(?<=-----END CERTIFICATE-----)/)[0] ?? "";
    await expect(
      call("GET", "/api/v1/deployments", { cert: { chainPem: leafOnly, keyPem: old.keyPem } }),
    ).rejects.toThrow();
  });

  it("lies as each manifest fault says", async () => {
    wfm.inject({ kind: "deployment-digest-mismatch", deploymentId: "d1" });
    wfm.inject({ kind: "size-bytes-wrong" });
    const p = wfm.publish([{ deploymentId: "d1", yaml: yamlOf("d1") }]);
    const d = p.deployments[0];
    if (!d) throw new Error("no deployment");
    const y = await call("GET", d.url);
    expect(y.status).toBe(200);
    expect(sha(y.body)).not.toBe(d.digest);
    const m = JSON.parse((await call("GET", "/api/v1/deployments")).body.toString());
    expect(m.deployments[0].sizeBytes).toBe(y.body.length + 1000);

    wfm.clearFaults();
    wfm.inject({ kind: "bundle-digest-mismatch" });
    const q = wfm.publish([{ deploymentId: "d1", yaml: yamlOf("d1") }]);
    const bz = await call("GET", q.bundle?.url ?? "");
    expect(bz.status).toBe(200);
    expect(sha(bz.body)).not.toBe(q.bundle?.digest);
    expect(q.manifestVersion).toBe(3n);

    wfm.clearFaults();
    wfm.inject({ kind: "digest-algorithm", algorithm: "sha512" });
    const r = wfm.publish([{ deploymentId: "d1", yaml: yamlOf("d1") }]);
    expect(r.deployments[0]?.digest).toMatch(/^sha512:[0-9a-f]{128}$/);
    const rm = JSON.parse((await call("GET", "/api/v1/deployments")).body.toString());
    expect(rm.deployments[0].url).toBe(`/api/v1/deployments/d1/${r.deployments[0]?.digest}`);
    expect(rm.bundle.digest).toMatch(/^sha512:/);
    const ry = await call("GET", rm.deployments[0].url);
    expect(ry.status).toBe(200);

    wfm.clearFaults();
    wfm.inject({ kind: "manifest-version", version: 2n });
    expect(wfm.publish([]).manifestVersion).toBe(2n);
    wfm.clearFaults();
    expect(wfm.publish([]).manifestVersion).toBe(5n);
  });

  it("answers 429/503 with Retry-After a limited number of times, and 404 for artifact-404", async () => {
    wfm.inject({
      kind: "http-status",
      pathPrefix: "/api/v1/deployments",
      method: "GET",
      status: 503,
      retryAfterSeconds: 2,
      times: 1,
    });
    const a = await call("GET", "/api/v1/deployments");
    expect(a.status).toBe(503);
    expect(a.headers["retry-after"]).toBe("2");
    expect(a.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(a.body.toString()).retryable).toBe(true);
    expect((await call("GET", "/api/v1/deployments")).status).toBe(200);
    wfm.inject({ kind: "artifact-404", deploymentId: "d1" });
    const p = wfm.publish([{ deploymentId: "d1", yaml: yamlOf("d1") }]);
    expect((await call("GET", p.deployments[0]?.url ?? "")).status).toBe(404);
    expect((await call("GET", p.bundle?.url ?? "")).status).toBe(404);
  });
});

describe("instrumented WFM identities and trust", () => {
  it("presents each bad identity; the client's verdict and the handshake failure are visible", async () => {
    const expectSan = async (san: RegExp) => {
      const a = await call("GET", "/api/v1/deployments", {
        ca: `${wfm.clientCredentials().anchorsPem}`,
      });
      expect(a.peerSan).toMatch(san);
    };
    await wfm.presentIdentity("wrong-wfm-id");
    await expectSan(/wfm-x-impostor/);
    await wfm.presentIdentity("untrusted-ca");
    await expect(call("GET", "/api/v1/deployments")).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(wfm.tlsFailures().length).toBeGreaterThan(0);
    await wfm.presentIdentity("expired");
    await expect(call("GET", "/api/v1/deployments")).rejects.toThrow(/expired/);
    await wfm.presentIdentity("ca-leaf");
    const caLeaf = await new Promise<X509Certificate>((resolve, reject) => {
      const req = request(`${wfm.url}/api/v1/deployments`, {
        ca: wfm.clientCredentials().anchorsPem,
        cert: wfm.clientCredentials().chainPem,
        key: wfm.clientCredentials().keyPem,
        agent: false,
        rejectUnauthorized: false,
      });
      req.on("socket", (s) =>
        (s as TLSSocket).once("secureConnect", () => {
          const c = (s as TLSSocket).getPeerX509Certificate();
          req.destroy();
          if (c) resolve(c);
          else reject(new Error("no certificate"));
        }),
      );
      req.on("error", () => {});
      req.end();
    });
    expect(caLeaf.ca).toBe(true);
    await wfm.presentIdentity("good");
    await expectSan(/wfm\/wfm-x,/);
  });

  it("counts a handshake the client closes without a request as an attempt, but not connections it cut", async () => {
    const { connect } = await import("node:tls");
    const creds = wfm.clientCredentials();
    const port = Number(new URL(wfm.url).port);
    await new Promise<void>((resolve, reject) => {
      const s = connect({
        host: "127.0.0.1",
        port,
        ca: creds.anchorsPem,
        cert: creds.chainPem,
        key: creds.keyPem,
      });
      s.once("secureConnect", () => {
        s.end();
        resolve();
      });
      s.once("error", reject);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(wfm.tlsFailures().map((f) => f.message)).toEqual([
      "handshake completed, then the client closed without a request",
    ]);
    const idle = connect({
      host: "127.0.0.1",
      port,
      ca: creds.anchorsPem,
      cert: creds.chainPem,
      key: creds.keyPem,
    });
    idle.on("error", () => {});
    await new Promise((r) => idle.once("secureConnect", r));
    await new Promise((r) => setTimeout(r, 50));
    await wfm.presentIdentity("good");
    await new Promise((r) => setTimeout(r, 100));
    expect(wfm.tlsFailures()).toHaveLength(1);
  });

  it("offers TLS 1.1 only when asked (a client with a TLS 1.2 floor refuses)", async () => {
    await wfm.presentIdentity("good", { maxTlsVersion: "TLSv1.1" });
    await expect(call("GET", "/api/v1/deployments")).rejects.toThrow();
    await wfm.presentIdentity("good", { maxTlsVersion: "TLSv1.2" });
    expect((await call("GET", "/api/v1/deployments")).protocol).toBe("TLSv1.2");
    await wfm.presentIdentity("good");
    expect((await call("GET", "/api/v1/deployments")).protocol).toBe("TLSv1.3");
  });

  it("serves the SPIFFE bundle without a client certificate, default = the true anchors", async () => {
    const a = await call("GET", "", { base: wfm.bundleUrl, cert: null });
    expect(a.status).toBe(200);
    const doc = JSON.parse(a.body.toString());
    expect(doc.spiffe_sequence).toBe(1);
    expect(doc.keys[0].x5c[0]).toBe(wfm.trustAnchorDer("trusted").toString("base64"));
    wfm.serveBundle('{"keys":[]}');
    expect((await call("GET", "", { base: wfm.bundleUrl, cert: null })).body.toString()).toBe(
      '{"keys":[]}',
    );
    expect(wfm.requests().filter((r) => r.path === "/.well-known/spiffe/bundle.json")).toHaveLength(
      2,
    );
    // A fresh scope gets a fresh bundle port: a refresher left from an earlier Configure misses it.
    const before = wfm.bundleUrl;
    await wfm.reset();
    expect(wfm.bundleUrl).not.toBe(before);
    await expect(call("GET", "", { base: before, cert: null })).rejects.toThrow();
    expect((await call("GET", "", { base: wfm.bundleUrl, cert: null })).status).toBe(200);
    const t = tools();
    await expect(wfm.waitFor(t, "nothing", () => false, 60)).rejects.toThrow(
      /timed out after 60 ms/,
    );
  });
});
