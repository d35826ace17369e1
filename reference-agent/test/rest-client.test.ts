import { randomBytes } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { gzipSync } from "node:zlib";
import { mintCertificate, mintSvid } from "@margo/proto/identity";
import { MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileAgentIdentity } from "../src/identity/agent-identity.js";
import { silentLog } from "../src/log.js";
import { WfmRequestError } from "../src/wfm/api.js";
import { RestWfmClient } from "../src/wfm/rest-client.js";
import {
  CLIENT_ID,
  issuerOf,
  MemoryTrustStore,
  makeDomain,
  startServer,
  type TestDomain,
  type TestServer,
  testAgentConfig,
  WFM_ID,
} from "./support/trust-pki.js";

let domain: TestDomain;
let identity: FileAgentIdentity;
const servers: TestServer[] = [];
const clients: RestWfmClient[] = [];

beforeAll(async () => {
  domain = await makeDomain();
  identity = await FileAgentIdentity.open(
    testAgentConfig(domain.identityDir),
    new MemoryTrustStore().asStore(),
    silentLog,
  );
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
  await domain.cleanup();
});

async function serverWith(cert: { certPem: string; keyPem: string }, chainPem?: string) {
  const s = await startServer({
    certPem: chainPem ?? cert.certPem,
    keyPem: cert.keyPem,
    clientCaPem: domain.root.certPem,
    handler: (_req, res) => res.writeHead(201).end(),
  });
  servers.push(s);
  return s;
}

function clientFor(s: TestServer) {
  const c = new RestWfmClient(s.url, identity, { requestTimeoutMs: 5_000 });
  clients.push(c);
  return c;
}

/** The call's WfmRequestError (fails the test if it resolved or threw something else). */
async function failure(p: Promise<unknown>): Promise<WfmRequestError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(WfmRequestError);
  return e as WfmRequestError;
}

describe("RestWfmClient server identity (items 8-10, digest 5.3)", () => {
  it("item 8: accepts the exact WFM SPIFFE ID at 127.0.0.1 though the SVID has no IP or DNS SAN, and presents the client SVID", async () => {
    const s = await serverWith(await domain.serverSvid(WFM_ID));
    let peerUri: string | undefined;
    s.setHandler((req, res) => {
      peerUri = (req.socket as TLSSocket).getPeerCertificate().subjectaltname;
      res.writeHead(201).end();
    });
    const r = await clientFor(s).putCapabilities("dev-1", Buffer.from("{}"));
    expect(r.status).toBe(201);
    expect(peerUri).toBe(`URI:${CLIENT_ID}`);
    expect(s.requests[0]?.url).toBe("/api/v1/capabilities/dev-1");
  });

  const refusals: Array<[string, () => Promise<{ certPem: string; keyPem: string }>, string]> = [
    [
      "item 8: another WFM of the same trust domain",
      () => domain.serverSvid(`spiffe://example.org/margo/wfm/other`),
      "spiffe-id-mismatch",
    ],
    [
      "item 8: the WFM name in another trust domain under our anchor",
      () => domain.serverSvid("spiffe://other.org/margo/wfm/wfm-1"),
      "svid.foreign-trust-domain",
    ],
    [
      "item 8: a client SVID presented as the server",
      () => domain.serverSvid(CLIENT_ID),
      "spiffe-id-mismatch",
    ],
    [
      "item 10: a CA-flagged leaf carrying the WFM ID",
      () =>
        mintCertificate({
          subject: "O=example.org, CN=ca leaf",
          issuer: issuerOf(domain.root),
          ca: true,
          keyUsage: ["digitalSignature", "keyCertSign"],
          extendedKeyUsage: ["serverAuth", "clientAuth"],
          uris: [WFM_ID],
        }),
      "svid.ca-leaf",
    ],
    [
      "item 9: an expired WFM SVID",
      () =>
        domain.serverSvid(WFM_ID, {
          notBefore: new Date(Date.now() - 3 * 3600_000),
          notAfter: new Date(Date.now() - 2 * 3600_000),
        }),
      "svid.expired",
    ],
  ];
  for (const [name, mint, rule] of refusals) {
    it(`${name} -> identity error ${rule}, nothing reaches the server`, async () => {
      const s = await serverWith(await mint());
      const e = await failure(clientFor(s).putCapabilities("dev-1", Buffer.from("{}")));
      expect(e.kind).toBe("identity");
      expect(e.details.rule).toBe(rule);
      expect(e.details.retryable).toBe(false);
      expect(s.requests).toHaveLength(0);
    });
  }

  it("item 9: the WFM ID chained to a root outside the bundle -> svid.untrusted-chain", async () => {
    const stranger = await makeDomain();
    try {
      const cert = await mintSvid({ issuer: issuerOf(stranger.root), spiffeId: WFM_ID });
      const s = await serverWith(cert);
      const e = await failure(clientFor(s).getManifest());
      expect(e.kind).toBe("identity");
      expect(e.details.rule).toBe("svid.untrusted-chain");
      expect(s.requests).toHaveLength(0);
    } finally {
      await stranger.cleanup();
    }
  });

  it("a refused server is reported as identity, a closed port as network (retryable)", async () => {
    const s = await serverWith(await domain.serverSvid(WFM_ID));
    const url = s.url;
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    const c = new RestWfmClient(url, identity, { requestTimeoutMs: 5_000 });
    clients.push(c);
    const e = await failure(c.getManifest());
    expect(e.kind).toBe("network");
    expect(e.details.retryable).toBe(true);
  });
});

describe("RestWfmClient answers (items 54, 86)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await serverWith(await domain.serverSvid(WFM_ID));
  });

  it("item 86: 429 with Retry-After sets notBefore; the next call is deferred without reaching the server", async () => {
    s.setHandler((_req, res) => {
      res.writeHead(429, { "content-type": "application/problem+json", "retry-after": "3" }).end(
        JSON.stringify({
          type: "https://docs.margo.org/specification/problem-types#rate-limited",
          title: "Too Many Requests",
          status: 429,
          retryable: true,
          backoffStrategy: "exponential",
        }),
      );
    });
    const c = clientFor(s);
    const before = s.requests.length;
    const t0 = Date.now();
    const e = await failure(c.getManifest());
    expect(e.kind).toBe("http");
    expect(e.details.status).toBe(429);
    expect(e.details.retryable).toBe(true);
    expect(e.details.backoff).toBe("exponential");
    expect(e.details.retryAt).toBeGreaterThanOrEqual(t0 + 3000);
    expect(c.notBefore()).toBe(e.details.retryAt);
    const d = await failure(c.postStatus("d-1", Buffer.from("{}")));
    expect(d.kind).toBe("deferred");
    expect(d.details.retryAt).toBe(c.notBefore());
    expect(s.requests.length - before).toBe(1);
  });

  it("item 86: Retry-After as an HTTP-date and 503 with a problem: retryable, exponential", async () => {
    const at = new Date(Date.now() + 5_000);
    s.setHandler((_req, res) => {
      res
        .writeHead(503, {
          "content-type": "application/problem+json",
          "retry-after": at.toUTCString(),
        })
        .end(
          JSON.stringify({
            type: "https://docs.margo.org/specification/problem-types#service-unavailable",
            title: "Service Unavailable",
            status: 503,
            detail: "maintenance",
            retryable: true,
            backoffStrategy: "exponential",
          }),
        );
    });
    const c = clientFor(s);
    const e = await failure(c.postStatus("d-1", Buffer.from("{}")));
    expect(e.details.problem?.type).toMatch(/#service-unavailable$/);
    expect(e.details.problem?.detail).toBe("maintenance");
    expect(e.details.retryable).toBe(true);
    // HTTP-date has one-second resolution.
    expect(
      Math.abs((e.details.retryAt ?? 0) - Math.floor(at.getTime() / 1000) * 1000),
    ).toBeLessThan(1000);
    expect(c.notBefore()).toBe(e.details.retryAt);
  });

  it("item 86: a 422 problem is classified by its type; not retryable, no backoff", async () => {
    s.setHandler((_req, res) => {
      res.writeHead(422, { "content-type": "application/problem+json" }).end(
        JSON.stringify({
          type: "https://docs.margo.org/specification/problem-types#validation-failed",
          title: "Unprocessable",
          status: 422,
          retryable: false,
          backoffStrategy: "none",
          errors: [{ field: "/properties/state", message: "bad" }],
        }),
      );
    });
    const e = await failure(clientFor(s).postStatus("d-1", Buffer.from("{}")));
    expect(e.kind).toBe("http");
    expect(e.details.problem?.type).toBe(
      "https://docs.margo.org/specification/problem-types#validation-failed",
    );
    expect(e.details.retryable).toBe(false);
    expect(e.details.backoff).toBe("none");
    expect(e.details.retryAt).toBeUndefined();
  });

  it("a 500 without a problem body is retryable with exponential backoff; a bare 404 is not", async () => {
    s.setHandler((_req, res) => res.writeHead(500).end("oops"));
    const e500 = await failure(clientFor(s).getManifest());
    expect([e500.details.retryable, e500.details.backoff]).toEqual([true, "exponential"]);
    s.setHandler((_req, res) => res.writeHead(404).end());
    const e404 = await failure(clientFor(s).getManifest());
    expect([e404.details.retryable, e404.details.backoff]).toEqual([false, "none"]);
  });

  it("item 54: manifest GET sends Accept and If-None-Match; 304 and 200 with ETag and exact bytes", async () => {
    const body = Buffer.from('{"manifestVersion":3,"bundle":null,"deployments":[]}');
    s.setHandler((req, res) => {
      if (req.headers["if-none-match"] === '"e3"') res.writeHead(304).end();
      else res.writeHead(200, { "content-type": MANIFEST_MEDIA_TYPE, etag: '"e3"' }).end(body);
    });
    const c = clientFor(s);
    const first = await c.getManifest();
    expect(first.status).toBe(200);
    if (first.status !== 200) return;
    expect(Buffer.from(first.body).equals(body)).toBe(true);
    expect(first.etag).toBe('"e3"');
    const again = await c.getManifest('"e3"');
    expect(again.status).toBe(304);
    const last = s.requests.at(-1);
    expect(last?.headers.accept).toBe(MANIFEST_MEDIA_TYPE);
    expect(last?.headers["if-none-match"]).toBe('"e3"');
  });

  it("a manifest with another Content-Type is a protocol error", async () => {
    s.setHandler((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html>"));
    const e = await failure(clientFor(s).getManifest());
    expect(e.kind).toBe("protocol");
  });

  it("gzip artifact: Accept-Encoding gzip is sent and the exact decoded bytes come back", async () => {
    const yaml = Buffer.concat([
      Buffer.from("apiVersion: margo.org/v1-alpha1\n"),
      randomBytes(4096),
    ]);
    s.setHandler((req, res) => {
      expect(req.headers["accept-encoding"]).toBe("gzip");
      res
        .writeHead(200, { "content-type": "application/yaml", "content-encoding": "gzip" })
        .end(gzipSync(yaml));
    });
    const got = await clientFor(s).getArtifact("/api/v1/deployments/d-1/sha256:abc");
    expect(Buffer.from(got).equals(yaml)).toBe(true);
    expect(s.requests.at(-1)?.url).toBe("/api/v1/deployments/d-1/sha256:abc");
  });

  it("a gzip bomb (300 MiB of zeros, ~300 KB on the wire) is a protocol error at the 256 MiB decoded cap", async () => {
    const bomb = gzipSync(Buffer.alloc(300 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    s.setHandler((_req, res) =>
      res
        .writeHead(200, { "content-type": "application/yaml", "content-encoding": "gzip" })
        .end(bomb),
    );
    const e = await failure(clientFor(s).getArtifact("/api/v1/deployments/d-1/sha256:bomb"));
    expect(e.kind).toBe("protocol");
    expect(e.details.retryable).toBe(false);
    expect(e.message).toMatch(/decodes to more than 268435456 bytes/);
  }, 30_000);

  it("an artifact URL on another origin is refused before anything is sent", async () => {
    const before = s.requests.length;
    const e = await failure(clientFor(s).getArtifact("https://evil.example/api/v1/bundles/x"));
    expect(e.kind).toBe("protocol");
    expect(s.requests.length).toBe(before);
  });
});
