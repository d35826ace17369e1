import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { isWfmError } from "../src/core/errors.js";
import { hostingCapabilities } from "./support/bodies.js";
import { registerFixtureApp } from "./support/fixture-apps.js";
import { jsonOf, type MtlsClient, type MtlsResponse } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";
import { tarGzEntries } from "./support/tar-entries.js";

const MANIFEST = "application/vnd.margo.manifest.v1+json";
const BUNDLE = "application/vnd.margo.bundle.v1+tar+gzip";
const P = "https://docs.margo.org/specification/problem-types#";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

interface Manifest {
  manifestVersion: number;
  bundle: { mediaType: string; digest: string; sizeBytes: number; url: string } | null;
  deployments: Array<{ deploymentId: string; digest: string; sizeBytes?: number; url: string }>;
}

function manifestOf(res: MtlsResponse): Manifest {
  return JSON.parse(res.body.toString("utf8")) as Manifest;
}

function expectProblem(res: MtlsResponse, status: number, type: string) {
  expect(res.status, res.body.toString()).toBe(status);
  expect(res.headers["content-type"]).toBe("application/problem+json");
  const p = jsonOf(res);
  expect(p.type).toBe(type.startsWith("about:") ? type : `${P}${type}`);
  expect(p.status).toBe(status);
  return p;
}

/** Keys sorted recursively, no whitespace: RFC 8785 for the integers and strings used here. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

let wfm: TestWfm;
let a: MtlsClient;
let b: MtlsClient;

beforeAll(async () => {
  wfm = await startTestWfm();
  a = wfm.client(await wfm.admit("client-a"));
  b = wfm.client(await wfm.admit("client-b"));
  await registerFixtureApp(wfm.core, "compose-multi");
  await registerFixtureApp(wfm.core, "compose-single");
});
afterAll(async () => {
  await wfm?.dispose();
});

describe("State Manifest of a new client", () => {
  it("item 37: GET without Accept answers 200 in the manifest media type", async () => {
    const res = await a.get("/api/v1/deployments");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe(MANIFEST);
  });

  it("item 42/43: the first manifest has version 1, bundle null (present) and no deployments", async () => {
    const res = await b.get("/api/v1/deployments");
    const m = manifestOf(res);
    expect(m.manifestVersion).toBe(1);
    expect(Object.hasOwn(m, "bundle")).toBe(true);
    expect(m.bundle).toBeNull();
    expect(m.deployments).toEqual([]);
  });

  it("item 39: ETag is the quoted sha256 of the exact body bytes", async () => {
    const res = await a.get("/api/v1/deployments", { accept: MANIFEST });
    expect(res.headers.etag).toMatch(/^"sha256:[0-9a-f]{64}"$/);
    expect(res.headers.etag).toBe(`"${sha(res.body)}"`);
  });

  it("item 41: Cache-Control is private, never immutable or long max-age", async () => {
    const res = await a.get("/api/v1/deployments");
    expect(res.headers["cache-control"]).toBe("private");
  });

  it("item 38: an Accept of only unsupported types is 406 #server-cannot-generate-response", async () => {
    const res = await a.get("/api/v1/deployments", { accept: "application/json, text/*" });
    expectProblem(res, 406, "server-cannot-generate-response");
    const ok = await a.get("/api/v1/deployments", { accept: "application/*;q=0.2" });
    expect(ok.status).toBe(200);
  });

  it("item 40: If-None-Match with the current ETag is 304 with an empty body", async () => {
    const first = await a.get("/api/v1/deployments");
    const etag = String(first.headers.etag);
    for (const inm of [etag, `W/${etag}`, `"sha256:${"0".repeat(64)}", ${etag}`, "*"]) {
      const res = await a.get("/api/v1/deployments", { "if-none-match": inm });
      expect(res.status, inm).toBe(304);
      expect(res.body.length).toBe(0);
      expect(res.headers.etag).toBe(etag);
    }
    const other = await a.get("/api/v1/deployments", {
      "if-none-match": `"sha256:${"0".repeat(64)}"`,
    });
    expect(other.status).toBe(200);
    expect(other.body.equals(first.body)).toBe(true);
  });

  it("item 50: the manifest is serialized deterministically (RFC 8785)", async () => {
    const res = await a.get("/api/v1/deployments");
    expect(res.body.toString("utf8")).toBe(canonical(JSON.parse(res.body.toString("utf8"))));
  });
});

describe("Deployments over the Management Interface", () => {
  let deploymentId: string;
  let manifest: Manifest;
  let etagBefore: string;

  beforeAll(async () => {
    expect(
      (await a.sendJson("PUT", "/api/v1/capabilities/dev-1", hostingCapabilities("dev-1"))).status,
    ).toBe(201);
    etagBefore = String((await a.get("/api/v1/deployments")).headers.etag);
    const d = await wfm.core.createDeployment({
      applicationId: "compose-multi",
      clientId: "client-a",
      deviceId: "dev-1",
      parameters: { greeting: "hi" },
    });
    deploymentId = d.deploymentId;
    manifest = manifestOf(await a.get("/api/v1/deployments"));
  });

  it("item 42: a change strictly increases manifestVersion and changes the ETag", async () => {
    expect(manifest.manifestVersion).toBeGreaterThan(1);
    const res = await a.get("/api/v1/deployments", { "if-none-match": etagBefore });
    expect(res.status).toBe(200);
  });

  it("item 44: bundle mediaType and url forms", () => {
    expect(manifest.bundle?.mediaType).toBe(BUNDLE);
    expect(manifest.bundle?.url).toBe(`/api/v1/bundles/${manifest.bundle?.digest}`);
    expect(manifest.deployments).toHaveLength(1);
    const [ref] = manifest.deployments;
    expect(ref?.deploymentId).toBe(deploymentId);
    expect(ref?.url).toBe(`/api/v1/deployments/${deploymentId}/${ref?.digest}`);
  });

  it("item 47: the YAML is served content-addressed, immutable, as application/yaml", async () => {
    const ref = manifest.deployments[0];
    const res = await a.get(ref?.url ?? "");
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(ref?.digest);
    expect(res.headers.etag).toBe(`"${ref?.digest}"`);
    expect(res.headers["cache-control"]).toBe("private, max-age=31536000, immutable");
    expect(res.headers["content-type"]).toBe("application/yaml");
    const again = await a.get(ref?.url ?? "", { "if-none-match": `"${ref?.digest}"` });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it("item 47: the bundle is served content-addressed with the manifest's mediaType", async () => {
    const res = await a.get(manifest.bundle?.url ?? "");
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(manifest.bundle?.digest);
    expect(res.headers["content-type"]).toBe(manifest.bundle?.mediaType);
    expect(res.headers.etag).toBe(`"${manifest.bundle?.digest}"`);
    expect(res.headers["cache-control"]).toBe("private, max-age=31536000, immutable");
    const again = await a.get(manifest.bundle?.url ?? "", {
      "if-none-match": `"${manifest.bundle?.digest}"`,
    });
    expect(again.status).toBe(304);
  });

  it("item 45: the bundle holds exactly the referenced YAMLs at its root", async () => {
    const res = await a.get(manifest.bundle?.url ?? "");
    const entries = tarGzEntries(res.body).filter((e) => e.type === "0");
    expect(entries.map((e) => e.name)).toEqual([`${deploymentId}.yaml`]);
    const yaml = await a.get(manifest.deployments[0]?.url ?? "");
    expect(entries[0]?.bytes.equals(yaml.body)).toBe(true);
  });

  it("item 46/59/60: the YAML's id is the deploymentId (a UUID) and metadata is complete", async () => {
    const res = await a.get(manifest.deployments[0]?.url ?? "");
    const doc = parseYaml(res.body.toString("utf8")) as {
      id: string;
      metadata: { name: string; namespace: string; deviceId: string };
      spec: {
        applicationId: string;
        deploymentProfile: { type: string; components: Array<{ name: string }> };
      };
    };
    expect(doc.id).toBe(deploymentId);
    expect(doc.id).toMatch(UUID);
    expect(doc.spec.applicationId).toBe("compose-multi");
    expect(doc.metadata.deviceId).toBe("dev-1");
    expect(doc.metadata.name).toBeTruthy();
    expect(doc.metadata.namespace).toBeTruthy();
  });

  it("item 61/62: components keep the description's order and their extensions, root extensions do not leak", async () => {
    const res = await a.get(manifest.deployments[0]?.url ?? "");
    const doc = parseYaml(res.body.toString("utf8")) as {
      spec: { deploymentProfile: { components: Array<Record<string, unknown>> } };
    } & Record<string, unknown>;
    const comps = doc.spec.deploymentProfile.components;
    expect(comps.map((c) => c.name)).toEqual(["store", "api", "web"]);
    expect(comps[1]?.["x-margo-fixtures-extensions"]).toEqual({ role: "backend" });
  });

  it("item 49: with Accept-Encoding gzip the digest still covers the decoded bytes, Vary is set", async () => {
    const ref = manifest.deployments[0];
    const res = await a.get(ref?.url ?? "", { "accept-encoding": "gzip" });
    expect(res.status).toBe(200);
    expect(res.headers.vary).toBe("Accept-Encoding");
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(sha(gunzipSync(res.body))).toBe(ref?.digest);
    const plain = await a.get(ref?.url ?? "");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("Accept-Encoding");
  });

  it("item 48: unknown or malformed digests are 404 with the operation's problem type", async () => {
    const zero = `sha256:${"0".repeat(64)}`;
    expectProblem(
      await a.get(`/api/v1/deployments/${deploymentId}/${zero}`),
      404,
      "deployment-not-found",
    );
    expectProblem(await a.get(`/api/v1/bundles/${zero}`), 404, "invalid-bundle");
    expectProblem(await a.get(`/api/v1/bundles/sha256:ABC`), 404, "invalid-bundle");
    expectProblem(
      await a.get(`/api/v1/deployments/${deploymentId}/md5:abc`),
      404,
      "deployment-not-found",
    );
    // A digest of a live YAML under another deploymentId is still not that deployment.
    const ref = manifest.deployments[0];
    expectProblem(
      await a.get(`/api/v1/deployments/00000000-0000-4000-8000-000000000000/${ref?.digest}`),
      404,
      "deployment-not-found",
    );
  });

  it("item 63: invalid parameters are refused before the manifest changes; immutable settings stay", async () => {
    const before = manifestOf(await a.get("/api/v1/deployments")).manifestVersion;
    await expect(
      wfm.core.createDeployment({
        applicationId: "compose-multi",
        clientId: "client-a",
        deviceId: "dev-1",
        parameters: { apiPort: 80 },
      }),
    ).rejects.toSatisfy((e) => isWfmError(e, "semantic-error"));
    await expect(wfm.core.updateDeployment(deploymentId, { apiPort: 9000 })).rejects.toSatisfy(
      (e) => isWfmError(e, "semantic-error"),
    );
    expect(manifestOf(await a.get("/api/v1/deployments")).manifestVersion).toBe(before);
  });

  it("item 5: another client never sees or mutates this client's deployments and bundles", async () => {
    const ref = manifest.deployments[0];
    const mb = manifestOf(await b.get("/api/v1/deployments"));
    expect(mb.deployments).toEqual([]);
    expectProblem(await b.get(ref?.url ?? ""), 404, "deployment-not-found");
    expectProblem(
      await b.get(ref?.url ?? "", { "if-none-match": `"${ref?.digest}"` }),
      404,
      "deployment-not-found",
    );
    expectProblem(await b.get(manifest.bundle?.url ?? ""), 404, "invalid-bundle");
    const st = await b.sendJson(
      "POST",
      `/api/v1/deployments/${deploymentId}/status`,
      `{"deploymentId":"${deploymentId}","adoptedManifestVersion":${manifest.manifestVersion},"status":{"state":"installed"},"components":[{"name":"store","state":"installed"},{"name":"api","state":"installed"},{"name":"web","state":"installed"}]}`,
    );
    expect(st.status).toBeGreaterThanOrEqual(400);
    expect(await wfm.core.listStatuses({ clientId: "client-a", deploymentId })).toEqual([]);
  });

  it("item 42/43: removing the last deployment bumps the version and sets bundle back to null", async () => {
    const d = await wfm.core.createDeployment({
      applicationId: "compose-single",
      clientId: "client-a",
      deviceId: "dev-1",
    });
    const two = manifestOf(await a.get("/api/v1/deployments"));
    expect(two.manifestVersion).toBeGreaterThan(manifest.manifestVersion);
    expect(two.deployments.map((x) => x.deploymentId).sort()).toEqual(
      [deploymentId, d.deploymentId].sort(),
    );
    const tgz = await a.get(two.bundle?.url ?? "");
    expect(
      tarGzEntries(tgz.body)
        .map((e) => e.name)
        .sort(),
    ).toEqual([`${deploymentId}.yaml`, `${d.deploymentId}.yaml`].sort());
    await wfm.core.deleteDeployment(d.deploymentId);
    await wfm.core.deleteDeployment(deploymentId);
    const empty = manifestOf(await a.get("/api/v1/deployments"));
    expect(empty.manifestVersion).toBeGreaterThan(two.manifestVersion);
    expect(empty.bundle).toBeNull();
    expect(empty.deployments).toEqual([]);
    // The old bundle is no longer served: never an empty or stale archive.
    expectProblem(await a.get(two.bundle?.url ?? ""), 404, "invalid-bundle");
  });
});
