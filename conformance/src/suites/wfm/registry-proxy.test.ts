import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  classifyRequest,
  judgePulls,
  type RecordedRequest,
  startRegistryProxy,
} from "./registry-proxy.js";

const REPO = "margo-conformance/conformance-pull/package";
const MANIFEST = `sha256:${"a".repeat(64)}`;
const DESC = `sha256:${"b".repeat(64)}`;
const WANT = { repository: REPO, manifestRefs: ["1.0.0", MANIFEST], descriptionDigest: DESC };
const get = (path: string): RecordedRequest => ({ method: "GET", path });

describe("classifyRequest: distribution v1.1 pull endpoints", () => {
  it.each([
    ["GET", "/v2/", "base"],
    ["HEAD", `/v2/${REPO}/manifests/1.0.0`, "manifests"],
    ["GET", `/v2/${REPO}/manifests/${MANIFEST}`, "manifests"],
    ["GET", `/v2/${REPO}/blobs/${DESC}`, "blobs"],
    ["GET", `/v2/${REPO}/tags/list?n=10&last=0.9.0`, "tags/list"],
    ["GET", `/v2/${REPO}/referrers/${MANIFEST}?artifactType=x`, "referrers"],
  ])("%s %s is %s", (method, path, endpoint) => {
    expect(classifyRequest({ method, path }).endpoint).toBe(endpoint);
  });

  it.each([
    ["GET", "/v2/_catalog"],
    ["GET", "/v2"],
    ["GET", "/api/v1/packages/x"],
    ["GET", `/v2/${REPO}/manifests/../../x`],
    ["GET", `/v2/Upper/Case/manifests/1.0.0`],
    ["GET", `/v2/${REPO}/blobs/not-a-digest`],
    ["POST", `/v2/${REPO}/blobs/uploads/`],
    ["PUT", `/v2/${REPO}/manifests/1.0.0`],
    ["DELETE", `/v2/${REPO}/manifests/${MANIFEST}`],
  ])("%s %s is not a pull endpoint", (method, path) => {
    expect(classifyRequest({ method, path }).endpoint).toBeUndefined();
  });
});

describe("judgePulls", () => {
  const good = [get("/v2/"), get(`/v2/${REPO}/manifests/1.0.0`), get(`/v2/${REPO}/blobs/${DESC}`)];

  it("accepts a log of pull endpoints that fetched the manifest and the description", () => {
    expect(judgePulls(good, WANT)).toEqual({ offending: [], missing: [] });
  });

  it("names every request that is not a distribution endpoint (the fail item 80 reports)", () => {
    const j = judgePulls(
      [...good, get("/v2/_catalog"), { method: "GET", path: "/x", status: 404 }],
      WANT,
    );
    expect(j.offending).toEqual([
      { method: "GET", path: "/v2/_catalog" },
      { method: "GET", path: "/x", status: 404 },
    ]);
  });

  it("says what was not pulled: a HEAD or another repository does not count", () => {
    const j = judgePulls(
      [
        { method: "HEAD", path: `/v2/${REPO}/manifests/1.0.0` },
        get(`/v2/other/repo/blobs/${DESC}`),
      ],
      WANT,
    );
    expect(j.offending).toEqual([]);
    expect(j.missing).toHaveLength(2);
    expect(judgePulls([], WANT).missing).toHaveLength(2);
  });
});

describe("startRegistryProxy", () => {
  const seen: Array<{ method?: string; url?: string; host?: string; auth?: string; body: string }> =
    [];
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method,
        url: req.url,
        host: req.headers.host,
        auth: req.headers.authorization,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(req.url === "/v2/missing" ? 404 : 200, { "docker-content-digest": DESC });
      res.end("payload");
    });
  });
  let upstreamAddress = "";
  beforeAll(async () => {
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upstreamAddress = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

  function send(
    address: string,
    method: string,
    path: string,
    body?: string,
  ): Promise<{ status: number; body: string; digest?: string }> {
    const [host, port] = address.split(":");
    return new Promise((resolve, reject) => {
      const req = request(
        { host, port: Number(port), method, path, headers: { authorization: "Bearer t" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              digest: res.headers["docker-content-digest"] as string | undefined,
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  it("forwards method, path, headers and body, answers with the upstream's reply and records each request", async () => {
    const proxy = await startRegistryProxy({ upstream: upstreamAddress });
    try {
      expect(proxy.address).toMatch(/^127\.0\.0\.1:\d+$/);
      const r = await send(proxy.address, "GET", `/v2/${REPO}/manifests/1.0.0`);
      expect(r).toEqual({ status: 200, body: "payload", digest: DESC });
      const r2 = await send(proxy.address, "POST", "/v2/missing", "hello");
      expect(r2.status).toBe(404);
      expect(seen.slice(-2)).toEqual([
        {
          method: "GET",
          url: `/v2/${REPO}/manifests/1.0.0`,
          host: upstreamAddress,
          auth: "Bearer t",
          body: "",
        },
        {
          method: "POST",
          url: "/v2/missing",
          host: upstreamAddress,
          auth: "Bearer t",
          body: "hello",
        },
      ]);
      expect(proxy.requests()).toEqual([
        { method: "GET", path: `/v2/${REPO}/manifests/1.0.0`, status: 200 },
        { method: "POST", path: "/v2/missing", status: 404 },
      ]);
    } finally {
      await proxy.close();
    }
  });

  it("answers 502 and still records the request when the registry is unreachable", async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const proxy = await startRegistryProxy({ upstream: `127.0.0.1:${port}` });
    try {
      const r = await send(proxy.address, "GET", "/v2/");
      expect(r.status).toBe(502);
      expect(proxy.requests()).toEqual([{ method: "GET", path: "/v2/" }]);
    } finally {
      await proxy.close();
    }
  });
});
