import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  computeDigest,
  DigestMismatchError,
  encodeManifest,
  type FetchLike,
  InvalidDigestError,
  OCI_EMPTY_BYTES,
  OCI_EMPTY_DESCRIPTOR,
  OCI_IMAGE_MANIFEST,
  OciClient,
  OciError,
  pullApplicationPackage,
  pushApplicationPackage,
} from "../src/oci/index.js";
import { REGISTRY, requireRegistry, uniqueRepo } from "./oci-test-env.js";

/** recordingFetch counts requests by method so tests can see how an upload was done. */
function recordingFetch(): { fetch: FetchLike; calls: Array<{ method: string; url: string }> } {
  const calls: Array<{ method: string; url: string }> = [];
  return {
    calls,
    fetch: (input, init) => {
      calls.push({ method: init?.method ?? "GET", url: input });
      return fetch(input, init);
    },
  };
}

/** tamperingFetch flips one byte of every successful GET body on matching URLs. */
function tamperingFetch(match: (url: string) => boolean, keepHeaders = true): FetchLike {
  return async (input, init) => {
    const res = await fetch(input, init);
    if ((init?.method ?? "GET") !== "GET" || !match(input) || res.status !== 200) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.length > 0) body[0] = (body[0] ?? 0) ^ 0xff;
    const headers = new Headers(keepHeaders ? res.headers : {});
    return new Response(body, { status: res.status, headers });
  };
}

async function pushTinyManifest(
  client: OciClient,
  repo: string,
  tag: string,
  note: string,
): Promise<string> {
  await client.pushBlob(repo, OCI_EMPTY_BYTES);
  const layer = new TextEncoder().encode(note);
  const pushed = await client.pushBlob(repo, layer);
  const bytes = encodeManifest({
    schemaVersion: 2,
    mediaType: OCI_IMAGE_MANIFEST,
    artifactType: "application/vnd.margo.test.v1+json",
    config: { ...OCI_EMPTY_DESCRIPTOR },
    layers: [{ mediaType: "text/plain", digest: pushed.digest, size: pushed.size }],
  });
  return client.putManifest(repo, tag, bytes, OCI_IMAGE_MANIFEST);
}

describe("OciClient against the real registry", () => {
  const client = new OciClient({ registry: REGISTRY });
  beforeAll(requireRegistry);

  it("pings the v2 API", async () => {
    await expect(client.ping()).resolves.toBeUndefined();
  });

  it("pushes a blob monolithically (POST then PUT), then skips it when it exists", async () => {
    const repo = uniqueRepo("mono");
    const bytes = randomBytes(10_000);
    const rec = recordingFetch();
    const c = new OciClient({ registry: REGISTRY, fetch: rec.fetch });
    const first = await c.pushBlob(repo, bytes);
    expect(first).toMatchObject({ skipped: false, chunks: 0, fallback: false, size: 10_000 });
    expect(first.digest).toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    expect(rec.calls.map((x) => x.method)).toEqual(["HEAD", "POST", "PUT"]);
    expect(await c.hasBlob(repo, first.digest)).toBe(true);
    expect(Buffer.from(await c.getBlob(repo, first.digest)).equals(bytes)).toBe(true);
    const again = await c.pushBlob(repo, bytes);
    expect(again.skipped).toBe(true);
  });

  it("pushes a blob in chunks (POST, PATCH with Content-Range, PUT)", async () => {
    const repo = uniqueRepo("chunked");
    const bytes = randomBytes(300_000);
    const rec = recordingFetch();
    const c = new OciClient({ registry: REGISTRY, fetch: rec.fetch });
    const pushed = await c.pushBlob(repo, bytes, { chunkSize: 64 * 1024 });
    expect(pushed.chunks).toBe(5);
    expect(rec.calls.filter((x) => x.method === "PATCH")).toHaveLength(5);
    expect(rec.calls.at(-1)?.method).toBe("PUT");
    expect(Buffer.from(await client.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  /**
   * patchRefusing answers the upload PATCHes from `from` (1-based) on with `status` itself, the
   * way a registry without chunked uploads would; everything else (POST, earlier PATCHes, the PUT)
   * goes to the real registry.
   */
  function patchRefusing(status: number, from = 1) {
    const rec = recordingFetch();
    let patches = 0;
    const fetchFn: FetchLike = async (input, init) => {
      if (init?.method === "PATCH" && ++patches >= from) {
        rec.calls.push({ method: "PATCH", url: input });
        const body = JSON.stringify({ errors: [{ code: "UNSUPPORTED", message: "no chunks" }] });
        return new Response(body, { status, headers: { "content-type": "application/json" } });
      }
      return rec.fetch(input, init);
    };
    return { fetch: fetchFn, calls: rec.calls };
  }

  it("falls back to a monolithic upload when the registry refuses the first chunk", async () => {
    const repo = uniqueRepo("chunk-refused");
    const bytes = randomBytes(200_000);
    const wrap = patchRefusing(405);
    const c = new OciClient({ registry: REGISTRY, fetch: wrap.fetch });
    const pushed = await c.pushBlob(repo, bytes, { chunkSize: 64 * 1024 });
    expect(pushed).toMatchObject({ skipped: false, chunks: 0, fallback: true, size: 200_000 });
    const methods = wrap.calls.map((x) => x.method);
    expect(methods.filter((m) => m === "PATCH")).toHaveLength(1);
    expect(methods.filter((m) => m === "POST")).toHaveLength(2);
    expect(methods.at(-1)).toBe("PUT");
    expect(Buffer.from(await client.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  it("falls back when a later chunk is refused (416) and the blob is still intact", async () => {
    const repo = uniqueRepo("chunk-416");
    const bytes = randomBytes(300_000);
    const wrap = patchRefusing(416, 3);
    const c = new OciClient({ registry: REGISTRY, fetch: wrap.fetch });
    const pushed = await c.pushBlob(repo, bytes, { chunkSize: 64 * 1024 });
    expect(pushed).toMatchObject({ chunks: 0, fallback: true });
    expect(wrap.calls.filter((x) => x.method === "PATCH")).toHaveLength(3);
    expect(Buffer.from(await client.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  it("does not mistake a server failure on PATCH for a refusal", async () => {
    const repo = uniqueRepo("chunk-500");
    const c = new OciClient({ registry: REGISTRY, fetch: patchRefusing(500).fetch });
    const err = await c
      .pushBlob(repo, randomBytes(1000), { chunkSize: 100 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).status).toBe(500);
  });

  it("sends no chunk smaller than OCI-Chunk-Min-Length (except the last)", async () => {
    const repo = uniqueRepo("chunk-min");
    const bytes = randomBytes(300_000);
    const ranges: string[] = [];
    const minLength: FetchLike = async (input, init) => {
      if (init?.method === "PATCH")
        ranges.push(new Headers(init.headers).get("content-range") ?? "");
      const res = await fetch(input, init);
      if (init?.method !== "POST") return res;
      const headers = new Headers(res.headers);
      headers.set("oci-chunk-min-length", "100000");
      return new Response(res.body, { status: res.status, headers });
    };
    const c = new OciClient({ registry: REGISTRY, fetch: minLength });
    const pushed = await c.pushBlob(repo, bytes, { chunkSize: 64 * 1024 });
    expect(pushed).toMatchObject({ chunks: 3, fallback: false });
    expect(ranges).toEqual(["0-99999", "100000-199999", "200000-299999"]);
    expect(Buffer.from(await client.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  it("chunks automatically above the threshold", async () => {
    const repo = uniqueRepo("auto-chunk");
    const c = new OciClient({ registry: REGISTRY, chunkThreshold: 1000, defaultChunkSize: 1000 });
    const bytes = randomBytes(2500);
    const pushed = await c.pushBlob(repo, bytes);
    expect(pushed.chunks).toBe(3);
    expect(Buffer.from(await c.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  it("streams a blob and verifies it at the end", async () => {
    const repo = uniqueRepo("stream");
    const bytes = randomBytes(200_000);
    const { digest } = await client.pushBlob(repo, bytes);
    const chunks: Uint8Array[] = [];
    for await (const chunk of client.getBlobStream(repo, digest)) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it("stores and verifies sha512 blobs", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(1000);
    const pushed = await client.pushBlob(repo, bytes, { algorithm: "sha512" });
    expect(pushed.digest).toBe(computeDigest(bytes, "sha512"));
    expect(Buffer.from(await client.getBlob(repo, pushed.digest)).equals(bytes)).toBe(true);
  });

  it("refuses digests with unsupported algorithms before sending anything", async () => {
    const rec = recordingFetch();
    const c = new OciClient({ registry: REGISTRY, fetch: rec.fetch });
    await expect(c.getBlob("margo-test/x", `md5:${"0".repeat(32)}`)).rejects.toBeInstanceOf(
      InvalidDigestError,
    );
    expect(rec.calls).toHaveLength(0);
  });

  it("detects altered blob bytes (buffered and streamed) with DigestMismatchError", async () => {
    const repo = uniqueRepo("tamper-blob");
    const bytes = randomBytes(5000);
    const { digest } = await client.pushBlob(repo, bytes);
    const evil = new OciClient({
      registry: REGISTRY,
      fetch: tamperingFetch((u) => u.includes("/blobs/")),
    });
    const err = await evil.getBlob(repo, digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(digest);
    const drain = async () => {
      for await (const _ of evil.getBlobStream(repo, digest)) {
        // consume
      }
    };
    await expect(drain()).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it("detects an altered manifest pulled by tag (Docker-Content-Digest) and by digest", async () => {
    const repo = uniqueRepo("tamper-manifest");
    const digest = await pushTinyManifest(client, repo, "1.0.0", "hello");
    const evil = new OciClient({
      registry: REGISTRY,
      fetch: tamperingFetch((u) => u.includes("/manifests/")),
    });
    await expect(evil.getManifest(repo, "1.0.0")).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(evil.getManifest(repo, digest)).rejects.toBeInstanceOf(DigestMismatchError);
    const honest = await client.getManifest(repo, "1.0.0");
    expect(honest.digest).toBe(digest);
    expect(computeDigest(honest.bytes)).toBe(digest);
    expect(honest.mediaType).toBe(OCI_IMAGE_MANIFEST);
  });

  it("asks for a blob by the digest of other content: the verification catches it", async () => {
    const repo = uniqueRepo("swap");
    const wanted = randomBytes(100);
    const other = randomBytes(100);
    const wantedDigest = computeDigest(wanted);
    const { digest: otherDigest } = await client.pushBlob(repo, other);
    // A proxy that answers every blob request with the other blob's content and no digest header.
    const swapping: FetchLike = (input, init) =>
      fetch(input.replace(wantedDigest, otherDigest), init).then(
        async (res) => new Response(await res.arrayBuffer(), { status: res.status }),
      );
    const c = new OciClient({ registry: REGISTRY, fetch: swapping });
    await expect(c.getBlob(repo, wantedDigest)).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it("follows Link pagination of the tags list", async () => {
    const repo = uniqueRepo("tags");
    const tags = ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.0.1-rc.1"];
    for (const tag of tags) await pushTinyManifest(client, repo, tag, tag);
    // distribution 2.8 ignores n/last on tags/list, so whatever it does the client gets all tags.
    expect((await client.listTags(repo, { n: 2 })).sort()).toEqual([...tags].sort());
    // A v1.1 registry pages: emulate that over the real answer (lexical order, n, last, Link).
    const rec = recordingFetch();
    const paging: FetchLike = async (input, init) => {
      const url = new URL(input);
      if (!url.pathname.endsWith("/tags/list")) return rec.fetch(input, init);
      const res = await rec.fetch(`${url.origin}${url.pathname}`, init);
      const all = ((await res.json()) as { tags: string[] }).tags.sort();
      const n = Number(url.searchParams.get("n") ?? all.length);
      const last = url.searchParams.get("last");
      const rest = last === null ? all : all.filter((t) => t > last);
      const page = rest.slice(0, n);
      const headers = new Headers({ "content-type": "application/json" });
      if (rest.length > n) {
        headers.set(
          "link",
          `<${url.pathname}?n=${n}&last=${encodeURIComponent(page.at(-1) ?? "")}>; rel="next"`,
        );
      }
      return new Response(JSON.stringify({ name: repo, tags: page }), { status: 200, headers });
    };
    const c = new OciClient({ registry: REGISTRY, fetch: paging });
    expect(await c.listTags(repo, { n: 2 })).toEqual([...tags].sort());
    expect(rec.calls.filter((x) => x.url.includes("/tags/list"))).toHaveLength(3);
    expect(await c.listTags(repo, { n: 10, last: "1.1.0" })).toEqual(["2.0.0", "2.0.1-rc.1"]);
  });

  it("reports registry errors with the distribution error code", async () => {
    const repo = uniqueRepo("errors");
    await pushTinyManifest(client, repo, "1.0.0", "x");
    const missingManifest = await client.getManifest(repo, "9.9.9").catch((e: unknown) => e);
    expect(missingManifest).toBeInstanceOf(OciError);
    expect(missingManifest).toMatchObject({
      code: "MANIFEST_UNKNOWN",
      status: 404,
      repo,
      reference: "9.9.9",
    });
    const missingBlob = await client
      .getBlob(repo, computeDigest(randomBytes(8)))
      .catch((e: unknown) => e);
    expect(missingBlob).toMatchObject({ code: "BLOB_UNKNOWN", status: 404 });
    const missingRepo = await client.listTags(uniqueRepo("nothing")).catch((e: unknown) => e);
    expect(missingRepo).toMatchObject({ code: "NAME_UNKNOWN", status: 404 });
    const badManifest = await client
      .putManifest(repo, "bad", new TextEncoder().encode('{"schemaVersion":2}'), OCI_IMAGE_MANIFEST)
      .catch((e: unknown) => e);
    expect(badManifest).toBeInstanceOf(OciError);
    expect((badManifest as OciError).status).toBe(400);
  });

  it("bounds manifest size, resolves with HEAD and deletes by digest", async () => {
    const repo = uniqueRepo("head");
    const digest = await pushTinyManifest(client, repo, "1.0.0", "y");
    const small = new OciClient({ registry: REGISTRY, maxManifestBytes: 64 });
    await expect(small.getManifest(repo, "1.0.0")).rejects.toMatchObject({ code: "TOO_LARGE" });
    expect(await client.headManifest(repo, "1.0.0")).toMatchObject({
      digest,
      mediaType: OCI_IMAGE_MANIFEST,
    });
    expect(await client.headManifest(repo, "0.0.1")).toBeUndefined();
    await client.deleteManifest(repo, digest);
    expect(await client.headManifest(repo, digest)).toBeUndefined();
  });

  it("turns a tampered package layer into an oci.digest-mismatch problem, not a crash", async () => {
    const repo = uniqueRepo("tamper-package");
    const description = "apiVersion: v1\nid: t\nmetadata:\n  name: T\n  version: 0.0.1\n";
    const pushed = await pushApplicationPackage(client, repo, [
      { path: "margo.yaml", bytes: new TextEncoder().encode(description) },
    ]);
    const clean = await pullApplicationPackage(client, repo, "0.0.1");
    expect(clean.problems).toEqual([]);
    expect(clean.manifestDigest).toBe(pushed.digest);
    const evil = new OciClient({
      registry: REGISTRY,
      fetch: tamperingFetch((u) => u.includes("/blobs/")),
    });
    const pulled = await pullApplicationPackage(evil, repo, "0.0.1");
    expect(pulled.problems.map((p) => p.rule)).toContain("oci.digest-mismatch");
    expect(pulled.problems.find((p) => p.rule === "oci.digest-mismatch")?.pointer).toBe(
      "/layers/0/digest",
    );
    expect(pulled.description).toBeUndefined();
  });
});
