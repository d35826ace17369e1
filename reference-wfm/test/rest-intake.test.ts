import { request } from "node:https";
import { DeploymentState } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCapabilities, hostingCapabilities, statusBody } from "./support/bodies.js";
import { registerFixtureApp } from "./support/fixture-apps.js";
import { jsonOf, type MtlsClient, type MtlsResponse } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

const P = "https://docs.margo.org/specification/problem-types#";

function expectProblem(res: MtlsResponse, status: number, type: string) {
  expect(res.status, res.body.toString()).toBe(status);
  expect(res.headers["content-type"]).toBe("application/problem+json");
  const p = jsonOf(res);
  expect(p.type).toBe(type === "about:blank" ? type : `${P}${type}`);
  expect(p.status).toBe(status);
  expect(typeof p.title).toBe("string");
  return p;
}

let wfm: TestWfm;
let a: MtlsClient;
let b: MtlsClient;
let deploymentId: string;
let version: bigint;

beforeAll(async () => {
  wfm = await startTestWfm({ config: { maxBodyBytes: 16 * 1024 } });
  a = wfm.client(await wfm.admit("client-a"));
  b = wfm.client(await wfm.admit("client-b"));
  await registerFixtureApp(wfm.core, "compose-single");
});
afterAll(async () => {
  await wfm?.dispose();
});

describe("capabilities", () => {
  it("item 26: PUT answers 201 on create, 200 on replace; DELETE answers 204", async () => {
    const put1 = await a.sendJson(
      "PUT",
      "/api/v1/capabilities/cap-1",
      hostingCapabilities("cap-1"),
    );
    expect(put1.status).toBe(201);
    expect(put1.body.length).toBe(0);
    const changed = hostingCapabilities("cap-1");
    (changed.properties as Record<string, unknown>).memory = "8 Gi";
    expect((await a.sendJson("PUT", "/api/v1/capabilities/cap-1", changed)).status).toBe(200);
    const stored = await wfm.core.getDevice("client-a", "cap-1");
    expect(stored?.capabilities?.properties?.memory).toBe("8 Gi");
    const del = await a.request("DELETE", "/api/v1/capabilities/cap-1");
    expect(del.status).toBe(204);
    expect(del.body.length).toBe(0);
    expect(await wfm.core.getDevice("client-a", "cap-1")).toBeUndefined();
  });

  it("item 27: a child before its gateway is 404 #gateway-not-found; after it, 201", async () => {
    const child = hostingCapabilities("gw-1/child-1");
    expectProblem(
      await a.sendJson("PUT", "/api/v1/capabilities/gw-1/child-1", child),
      404,
      "gateway-not-found",
    );
    expect(
      (await a.sendJson("PUT", "/api/v1/capabilities/gw-1", gatewayCapabilities("gw-1"))).status,
    ).toBe(201);
    expect((await a.sendJson("PUT", "/api/v1/capabilities/gw-1/child-1", child)).status).toBe(201);
    // Another client's gateway of the same id does not count (item 5).
    expectProblem(
      await b.sendJson("PUT", "/api/v1/capabilities/gw-1/child-1", child),
      404,
      "gateway-not-found",
    );
    expect((await a.request("DELETE", "/api/v1/capabilities/gw-1/child-1")).status).toBe(204);
  });

  it("item 28: DELETE of an unknown device is 404 #device-not-found", async () => {
    expectProblem(
      await a.request("DELETE", "/api/v1/capabilities/never-seen"),
      404,
      "device-not-found",
    );
  });

  it("item 29: malformed JSON is 400 #invalid-request", async () => {
    for (const body of ["{", "", "not json", '{"properties":'])
      expectProblem(
        await a.sendJson("PUT", "/api/v1/capabilities/bad-1", body),
        400,
        "invalid-request",
      );
    expect(await wfm.core.getDevice("client-a", "bad-1")).toBeUndefined();
  });

  it("item 29: schema violations are 422 #semantic-error naming every field", async () => {
    const body = hostingCapabilities("bad-2") as { properties: Record<string, unknown> } & Record<
      string,
      unknown
    >;
    body.properties.cpus = [{ cores: 2, architecture: "sparc" }];
    body.properties.vendor = undefined;
    // The OpenAPI closes only the root object (inner `properties` stays open), so the unknown
    // non-extension member is placed at the root.
    body.roles = ["Standalone Device"];
    const p = expectProblem(
      await a.sendJson("PUT", "/api/v1/capabilities/bad-2", body),
      422,
      "semantic-error",
    );
    const fields = (p.errors as Array<{ field: string }>).map((e) => e.field);
    expect(fields).toContain("/properties/cpus/0/architecture");
    expect(fields.some((f) => f.includes("vendor"))).toBe(true);
    expect(fields).toContain("/roles");
    const empty = hostingCapabilities("bad-3") as { properties: Record<string, unknown> };
    empty.properties.supportedRuntimes = [];
    expectProblem(
      await a.sendJson("PUT", "/api/v1/capabilities/bad-3", empty),
      422,
      "semantic-error",
    );
    expect(await wfm.core.getDevice("client-a", "bad-2")).toBeUndefined();
  });

  it("item 34: an unknown supportedDeploymentTypes value is accepted and read as custom", async () => {
    const body = hostingCapabilities("dt-1") as { properties: Record<string, unknown> } & Record<
      string,
      unknown
    >;
    body.properties.supportedDeploymentTypes = ["compose", "wasm"];
    body.labels = { "example.org/runtime": "wasm" };
    expect((await a.sendJson("PUT", "/api/v1/capabilities/dt-1", body)).status).toBe(201);
    const dev = await wfm.core.getDevice("client-a", "dt-1");
    expect(dev?.capabilities?.properties?.supportedDeploymentTypes).toEqual(["compose", "custom"]);
  });

  it("item 35: unknown x-...-extensions are ignored, not refused", async () => {
    const body = {
      ...hostingCapabilities("ext-1"),
      "x-acme-extensions": { anything: [1, { a: true }] },
    };
    expect((await a.sendJson("PUT", "/api/v1/capabilities/ext-1", body)).status).toBe(201);
  });

  it("item 5: two clients reporting the same deviceId address different records", async () => {
    const one = hostingCapabilities("same");
    const two = hostingCapabilities("same");
    (two.properties as Record<string, unknown>).serialNumber = "sn-of-b";
    expect((await a.sendJson("PUT", "/api/v1/capabilities/same", one)).status).toBe(201);
    expect((await b.sendJson("PUT", "/api/v1/capabilities/same", two)).status).toBe(201);
    expect((await b.request("DELETE", "/api/v1/capabilities/same")).status).toBe(204);
    const left = await wfm.core.getDevice("client-a", "same");
    expect(left?.capabilities?.properties?.serialNumber).toBe("sn-same");
    expect(await wfm.core.getDevice("client-b", "same")).toBeUndefined();
  });
});

describe("deployment status", () => {
  beforeAll(async () => {
    await a.sendJson("PUT", "/api/v1/capabilities/st-dev", hostingCapabilities("st-dev"));
    const d = await wfm.core.createDeployment({
      applicationId: "compose-single",
      clientId: "client-a",
      deviceId: "st-dev",
    });
    deploymentId = d.deploymentId;
    version = d.manifestVersion;
  });

  it("item 71: 201 on the first report, 200 on updates", async () => {
    const url = `/api/v1/deployments/${deploymentId}/status`;
    const r1 = await a.sendJson(
      "POST",
      url,
      statusBody(deploymentId, version, "installing", ["hello"]),
    );
    expect(r1.status, r1.body.toString()).toBe(201);
    const r2 = await a.sendJson(
      "POST",
      url,
      statusBody(deploymentId, version, "installed", ["hello"]),
    );
    expect(r2.status).toBe(200);
    const st = await wfm.core.listStatuses({ clientId: "client-a", deploymentId });
    expect(st).toHaveLength(1);
  });

  it("item 71: malformed is 400; unknown state, id mismatch, missing adoptedManifestVersion are 422", async () => {
    const url = `/api/v1/deployments/${deploymentId}/status`;
    expectProblem(await a.sendJson("POST", url, "{nope"), 400, "invalid-request");
    expectProblem(
      await a.sendJson("POST", url, statusBody(deploymentId, version, "Installed", ["hello"])),
      422,
      "semantic-error",
    );
    expectProblem(
      await a.sendJson(
        "POST",
        url,
        statusBody("00000000-0000-4000-8000-000000000000", version, "installed", ["hello"]),
      ),
      422,
      "semantic-error",
    );
    const missing = JSON.parse(statusBody(deploymentId, version, "installed", ["hello"])) as Record<
      string,
      unknown
    >;
    delete missing.adoptedManifestVersion;
    const p = expectProblem(await a.sendJson("POST", url, missing), 422, "semantic-error");
    expect(JSON.stringify(p.errors)).toContain("adoptedManifestVersion");
    // The rejected reports changed nothing.
    const all = await wfm.core.listStatuses({ clientId: "client-a", deploymentId });
    expect(all).toHaveLength(1);
    expect(all[0]?.status?.status?.state).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLED);
  });
});

describe("edge rules", () => {
  it("oversized bodies: 413 from Content-Length before reading, and while streaming", async () => {
    const big = JSON.stringify({
      ...hostingCapabilities("big"),
      "x-pad-extensions": { p: "x".repeat(20_000) },
    });
    const r = await a.sendJson("PUT", "/api/v1/capabilities/big", big);
    const p = expectProblem(r, 413, "about:blank");
    expect(p.title).toBe("Payload Too Large");
    expect(r.headers.connection).toBe("close");
    // Chunked: no Content-Length, counted as it streams.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: wfm.managementPort,
          method: "PUT",
          path: "/api/v1/capabilities/big",
          agent: a.agent,
          headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("x".repeat(4096));
      req.end();
    });
    expect(chunked).toBe(413);
    expect(await wfm.core.getDevice("client-a", "big")).toBeUndefined();
  });

  it("oversized bodies: with Expect: 100-continue the client is never invited to send", async () => {
    const outcome = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = request(
        {
          host: "127.0.0.1",
          port: wfm.managementPort,
          method: "PUT",
          path: "/api/v1/capabilities/big-expect",
          agent: a.agent,
          headers: {
            "content-type": "application/json",
            "content-length": String(1024 * 1024),
            expect: "100-continue",
          },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, continued });
          req.destroy();
        },
      );
      req.on("continue", () => {
        continued = true;
        req.end("x".repeat(1024 * 1024));
      });
      req.on("error", (e) => (continued ? undefined : reject(e)));
    });
    expect(outcome).toEqual({ status: 413, continued: false });
  });

  it("a body that is not application/json is a malformed request (400 #invalid-request)", async () => {
    const body = JSON.stringify(hostingCapabilities("ct-1"));
    for (const ct of ["text/plain", "application/x-www-form-urlencoded"]) {
      const r = await a.request("PUT", "/api/v1/capabilities/ct-1", {
        headers: { "content-type": ct },
        body,
      });
      expectProblem(r, 400, "invalid-request");
    }
    const noCt = await a.request("PUT", "/api/v1/capabilities/ct-1", { body });
    expectProblem(noCt, 400, "invalid-request");
    const withCharset = await a.request("PUT", "/api/v1/capabilities/ct-1", {
      headers: { "content-type": "Application/JSON; charset=utf-8" },
      body,
    });
    expect(withCharset.status).toBe(201);
  });

  it("a content coding other than identity or a charset other than utf-8 is 400 #invalid-request naming it (rc.3 lists no 415)", async () => {
    const body = JSON.stringify(hostingCapabilities("enc-1"));
    const refused: Array<[Record<string, string>, RegExp]> = [
      [{ "content-type": "application/json", "content-encoding": "gzip" }, /Content-Encoding gzip/],
      [{ "content-type": "application/json", "content-encoding": "identity, br" }, /br/],
      [{ "content-type": "application/json; charset=iso-8859-1" }, /charset iso-8859-1/],
      [{ "content-type": 'application/json; charset="UTF-16"' }, /charset utf-16/],
    ];
    for (const [headers, named] of refused) {
      const r = await a.request("PUT", "/api/v1/capabilities/enc-1", { headers, body });
      const p = expectProblem(r, 400, "invalid-request");
      expect(String(p.detail)).toMatch(named);
      expect(r.headers.connection).toBe("close");
    }
    const post = await a.request("POST", "/api/v1/deployments/enc-dep/status", {
      headers: { "content-type": "application/json", "content-encoding": "deflate" },
      body: "{}",
    });
    expect(String(expectProblem(post, 400, "invalid-request").detail)).toMatch(/deflate/);
    expect(await wfm.core.getDevice("client-a", "enc-1")).toBeUndefined();
    const ok = await a.request("PUT", "/api/v1/capabilities/enc-1", {
      headers: {
        "content-type": 'application/json; Charset="UTF-8"',
        "content-encoding": "Identity",
      },
      body,
    });
    expect(ok.status).toBe(201);
  });

  it("deviceIds with dot segments or over 253 characters are 422 #semantic-error on PUT and 404 #device-not-found on DELETE (local policy, digest 4.1; rc.3 DELETE lists 204/403/404)", async () => {
    const long = `d${"x".repeat(253)}`;
    for (const [path, id] of [
      ["/api/v1/capabilities/.", "."],
      ["/api/v1/capabilities/..", ".."],
      ["/api/v1/capabilities/gw-dot/..", "gw-dot/.."],
      ["/api/v1/capabilities/%2E%2E/x", "../x"],
      ["/api/v1/capabilities/gw-dot/./c", "gw-dot/./c"],
      [`/api/v1/capabilities/${long}`, long],
    ] as const) {
      const put = await a.sendJson("PUT", path, hostingCapabilities(id));
      const p = expectProblem(put, 422, "semantic-error");
      expect(p.errors, path).toEqual([expect.objectContaining({ field: "deviceId" })]);
      expectProblem(await a.request("DELETE", path), 404, "device-not-found");
    }
    const max = "m".repeat(253);
    expect(
      (await a.sendJson("PUT", `/api/v1/capabilities/${max}`, hostingCapabilities(max))).status,
    ).toBe(201);
    expect((await a.request("DELETE", `/api/v1/capabilities/${max}`)).status).toBe(204);
  });

  it("item 84: unknown paths are 404 and wrong methods 405 with Allow, both about:blank problem+json", async () => {
    const nf = expectProblem(await a.get("/api/v1/nothing"), 404, "about:blank");
    expect(nf.title).toBe("Not Found");
    expect(nf.instance).toBe("/api/v1/nothing");
    const r = await a.request("POST", "/api/v1/deployments");
    const p = expectProblem(r, 405, "about:blank");
    expect(p.title).toBe("Method Not Allowed");
    expect(r.headers.allow).toBe("GET");
    const c = await a.get("/api/v1/capabilities/x");
    expect(c.headers.allow).toBe("PUT, DELETE");
  });

  it("item 85: 4xx problems are retryable:false with backoffStrategy none", async () => {
    const p = expectProblem(
      await a.request("DELETE", "/api/v1/capabilities/nope"),
      404,
      "device-not-found",
    );
    expect(p.retryable).toBe(false);
    expect(p.backoffStrategy).toBe("none");
  });
});

describe("rate limit", () => {
  it("item 85: a client over its budget gets 429 with Retry-After, retryable, exponential; others are unaffected", async () => {
    const limited = await startTestWfm({
      config: { rateLimit: { requestsPerSecond: 1, burst: 3 } },
    });
    try {
      const x = limited.client(await limited.admit("client-x"));
      const y = limited.client(await limited.admit("client-y"));
      const statuses: number[] = [];
      let last: MtlsResponse | undefined;
      for (let i = 0; i < 5; i++) {
        last = await x.get("/api/v1/deployments");
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses.slice(3)).toEqual([429, 429]);
      if (!last) throw new Error("no response");
      const p = expectProblem(last, 429, "about:blank");
      expect(Number(last.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(p.retryable).toBe(true);
      expect(p.backoffStrategy).toBe("exponential");
      expect(p.retryAfterSeconds).toBe(Number(last.headers["retry-after"]));
      expect((await y.get("/api/v1/deployments")).status).toBe(200);
    } finally {
      await limited.dispose();
    }
  });
});
