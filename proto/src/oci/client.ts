import {
  computeDigest,
  type DigestAlgorithm,
  DigestVerifier,
  isDigest,
  parseDigest,
  verifyDigest,
} from "./digest.js";
import { OciError } from "./errors.js";
import {
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V2,
  OCI_IMAGE_INDEX,
  OCI_IMAGE_MANIFEST,
} from "./media-types.js";
import { REPOSITORY_RE, TAG_RE } from "./reference.js";

/** The subset of the global `fetch` the client needs; tests inject wrappers that count or tamper. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface OciClientOptions {
  /** `host[:port]`, e.g. "127.0.0.1:5000". */
  registry: string;
  /** Speak http instead of https. Defaults to true for loopback hosts only. */
  plainHttp?: boolean;
  fetch?: FetchLike;
  /** Largest manifest accepted (the distribution spec suggests registries accept at least 4 MiB). */
  maxManifestBytes?: number;
  /** Largest blob `getBlob` buffers; use `getBlobStream` for bigger ones. */
  maxBlobBytes?: number;
  /** Blobs larger than this are uploaded in chunks even without an explicit chunkSize. */
  chunkThreshold?: number;
  /** Chunk size used when a blob is chunked because of chunkThreshold. */
  defaultChunkSize?: number;
  /** Extra headers on every request (e.g. a pre-obtained Authorization). */
  headers?: Record<string, string>;
}

/** A manifest as pulled: the exact bytes (what the digest covers) and their parsed form. */
export interface PulledManifest {
  bytes: Uint8Array;
  digest: string;
  mediaType: string;
  /** Parsed JSON; validate before trusting its shape. */
  manifest: unknown;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface PushedBlob {
  digest: string;
  size: number;
  /** True when the registry already had the blob and nothing was uploaded. */
  skipped: boolean;
  /** PATCH requests that made up the upload (0 for a monolithic one, also after a fallback). */
  chunks: number;
  /** True when the registry refused a chunk and the blob went up monolithically instead. */
  fallback: boolean;
}

const MiB = 1024 * 1024;
const DEFAULT_ACCEPT = [
  OCI_IMAGE_MANIFEST,
  OCI_IMAGE_INDEX,
  DOCKER_MANIFEST_V2,
  DOCKER_MANIFEST_LIST,
];
const MAX_ERROR_BODY = 64 * 1024;
const MAX_TAG_PAGES = 10_000;
/**
 * PATCH answers that mean "no chunked uploads here" (or not chunks of this size) rather than a
 * broken registry: method not allowed, bad request, length/size/type refused, range refused, not
 * implemented. Auth failures and other server errors are not refusals and still throw.
 */
const CHUNK_REFUSED = new Set([400, 405, 411, 413, 415, 416, 501]);

/** isLoopbackHost tells whether plain http is a safe default for a registry address. */
function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith("[")
    ? registry.slice(1, registry.indexOf("]"))
    : (registry.split(":")[0] ?? "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * OciClient speaks the OCI distribution spec v1.1 pull and push endpoints over `fetch`. It is the
 * only way this project touches a registry (checklist 80: packages are pulled only through
 * `tags/list`, `manifests` and `blobs`), and every pull verifies the digest over the exact bytes
 * received, so nothing downstream ever sees unverified content.
 */
export class OciClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly fetchFn: FetchLike;
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private readonly chunkThreshold: number;
  private readonly defaultChunkSize: number;
  private readonly headers: Record<string, string>;

  constructor(options: OciClientOptions) {
    this.registry = options.registry;
    const plain = options.plainHttp ?? isLoopbackHost(options.registry);
    this.baseUrl = `${plain ? "http" : "https"}://${options.registry}`;
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.maxManifestBytes = options.maxManifestBytes ?? 4 * MiB;
    this.maxBlobBytes = options.maxBlobBytes ?? 512 * MiB;
    this.chunkThreshold = options.chunkThreshold ?? 64 * MiB;
    this.defaultChunkSize = options.defaultChunkSize ?? 16 * MiB;
    this.headers = options.headers ?? {};
  }

  /** ping checks the registry speaks the v2 API (GET /v2/); it throws OciError otherwise. */
  async ping(): Promise<void> {
    const res = await this.request("GET", "/v2/", {});
    await this.expectStatus(res, [200], {});
    await res.body?.cancel();
  }

  /**
   * listTags returns every tag of a repository, following `Link: <...>; rel="next"` pages; `n`
   * is the page size asked for and `last` the tag to start after.
   */
  async listTags(repo: string, opts: { n?: number; last?: string } = {}): Promise<string[]> {
    checkRepo(repo);
    const query = new URLSearchParams();
    if (opts.n !== undefined) query.set("n", String(opts.n));
    if (opts.last !== undefined) query.set("last", opts.last);
    let path: string | undefined = `/v2/${repo}/tags/list${query.size ? `?${query}` : ""}`;
    const tags: string[] = [];
    for (let page = 0; path !== undefined; page++) {
      if (page >= MAX_TAG_PAGES) {
        throw new OciError(`tag list of ${repo} did not end after ${MAX_TAG_PAGES} pages`, {
          code: "PROTOCOL",
          status: 0,
          repo,
        });
      }
      const res = await this.request("GET", path, {});
      await this.expectStatus(res, [200], { repo });
      const body = await this.readBounded(res, this.maxManifestBytes, { repo });
      const parsed = parseJson(body, { repo }) as { tags?: unknown };
      if (parsed.tags !== null && parsed.tags !== undefined) {
        if (!Array.isArray(parsed.tags) || !parsed.tags.every((t) => typeof t === "string")) {
          throw new OciError(`tag list of ${repo} is not an array of strings`, {
            code: "PROTOCOL",
            status: res.status,
            repo,
          });
        }
        tags.push(...(parsed.tags as string[]));
      }
      path = nextLink(res.headers.get("link"));
    }
    return tags;
  }

  /**
   * getManifest pulls a manifest by tag or digest. The digest is verified: against the reference
   * when it is a digest, and against `Docker-Content-Digest` whenever the registry sends it.
   */
  async getManifest(
    repo: string,
    reference: string,
    accept?: readonly string[],
  ): Promise<PulledManifest> {
    checkRepo(repo);
    checkReference(reference, repo);
    const res = await this.request("GET", `/v2/${repo}/manifests/${reference}`, {
      headers: { accept: (accept ?? DEFAULT_ACCEPT).join(", ") },
    });
    await this.expectStatus(res, [200], { repo, reference });
    const bytes = await this.readBounded(res, this.maxManifestBytes, { repo, reference });
    const header = res.headers.get("docker-content-digest");
    const subject = `manifest ${repo}@${reference}`;
    let digest: string;
    if (isDigest(reference)) {
      verifyDigest(bytes, reference, subject);
      digest = reference;
    } else {
      digest = header ?? computeDigest(bytes);
    }
    if (header) verifyDigest(bytes, header, subject);
    const manifest = parseJson(bytes, { repo, reference });
    const declared = (manifest as { mediaType?: unknown } | null)?.mediaType;
    const contentType = res.headers.get("content-type")?.split(";")[0]?.trim();
    const mediaType = typeof declared === "string" ? declared : (contentType ?? "");
    return { bytes, digest, mediaType, manifest };
  }

  /** headManifest resolves a reference without downloading; undefined when it does not exist. */
  async headManifest(
    repo: string,
    reference: string,
    accept?: readonly string[],
  ): Promise<ManifestHead | undefined> {
    checkRepo(repo);
    checkReference(reference, repo);
    const res = await this.request("HEAD", `/v2/${repo}/manifests/${reference}`, {
      headers: { accept: (accept ?? DEFAULT_ACCEPT).join(", ") },
    });
    if (res.status === 404) return undefined;
    await this.expectStatus(res, [200], { repo, reference });
    const digest = res.headers.get("docker-content-digest");
    if (!digest) {
      throw new OciError(`HEAD ${repo}:${reference} returned no Docker-Content-Digest`, {
        code: "PROTOCOL",
        status: res.status,
        repo,
        reference,
      });
    }
    parseDigest(digest);
    return {
      digest,
      mediaType: res.headers.get("content-type")?.split(";")[0]?.trim() ?? "",
      size: Number(res.headers.get("content-length") ?? "0"),
    };
  }

  /**
   * putManifest uploads manifest bytes exactly as given (the digest covers them, so we never
   * re-serialise) and returns their sha256 digest after checking the registry agrees.
   */
  async putManifest(
    repo: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    checkRepo(repo);
    checkReference(reference, repo);
    if (bytes.byteLength > this.maxManifestBytes) {
      throw new OciError(`manifest of ${bytes.byteLength} bytes exceeds ${this.maxManifestBytes}`, {
        code: "TOO_LARGE",
        status: 0,
        repo,
        reference,
      });
    }
    const digest = computeDigest(bytes);
    if (isDigest(reference) && reference !== digest) verifyDigest(bytes, reference, "manifest put");
    const res = await this.request("PUT", `/v2/${repo}/manifests/${reference}`, {
      headers: { "content-type": mediaType },
      body: bytes,
    });
    await this.expectStatus(res, [201], { repo, reference });
    await res.body?.cancel();
    const header = res.headers.get("docker-content-digest");
    if (header && header !== digest) verifyDigest(bytes, header, `manifest ${repo}:${reference}`);
    return digest;
  }

  /** deleteManifest removes a manifest by digest (registries refuse deleting by tag). */
  async deleteManifest(repo: string, digest: string): Promise<void> {
    checkRepo(repo);
    parseDigest(digest);
    const res = await this.request("DELETE", `/v2/${repo}/manifests/${digest}`, {});
    await this.expectStatus(res, [202], { repo, reference: digest });
    await res.body?.cancel();
  }

  /** hasBlob asks whether the repository holds a blob (HEAD), so pushes can skip uploads. */
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    checkRepo(repo);
    parseDigest(digest);
    const res = await this.request("HEAD", `/v2/${repo}/blobs/${digest}`, {});
    if (res.status === 404) return false;
    await this.expectStatus(res, [200], { repo, reference: digest });
    return true;
  }

  /** getBlob downloads a blob into memory (bounded by maxBlobBytes) and verifies its digest. */
  async getBlob(
    repo: string,
    digest: string,
    opts: { maxBytes?: number } = {},
  ): Promise<Uint8Array> {
    checkRepo(repo);
    parseDigest(digest);
    const res = await this.request("GET", `/v2/${repo}/blobs/${digest}`, {});
    await this.expectStatus(res, [200], { repo, reference: digest });
    const bytes = await this.readBounded(res, opts.maxBytes ?? this.maxBlobBytes, {
      repo,
      reference: digest,
    });
    const subject = `blob ${digest} in ${repo}`;
    verifyDigest(bytes, digest, subject);
    const header = res.headers.get("docker-content-digest");
    if (header) verifyDigest(bytes, header, subject);
    return bytes;
  }

  /**
   * getBlobStream yields a blob's chunks while hashing them and throws DigestMismatchError after
   * the last chunk if the content is wrong: consumers must treat what they wrote as untrusted
   * until the iteration finished without throwing.
   */
  async *getBlobStream(repo: string, digest: string): AsyncGenerator<Uint8Array, void, undefined> {
    checkRepo(repo);
    const verifier = new DigestVerifier(digest, `blob ${digest} in ${repo}`);
    const res = await this.request("GET", `/v2/${repo}/blobs/${digest}`, {});
    await this.expectStatus(res, [200], { repo, reference: digest });
    if (!res.body) {
      verifier.finish();
      return;
    }
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const chunk = value as Uint8Array;
        verifier.update(chunk);
        yield chunk;
      }
    } finally {
      reader.releaseLock();
    }
    verifier.finish();
  }

  /**
   * pushBlob uploads content-addressed bytes unless the registry already has them. Monolithic
   * uploads are POST then PUT (this registry treats a single-POST upload as a session start);
   * chunked ones are POST, PATCHes with Content-Range, then a closing PUT. Chunking adapts to what
   * the registry allows: chunks are never smaller than the `OCI-Chunk-Min-Length` it announces,
   * and when it refuses a chunk (CHUNK_REFUSED) the session is cancelled and the blob is sent
   * monolithically in a fresh one, since a registry may implement only the monolithic flow.
   */
  async pushBlob(
    repo: string,
    bytes: Uint8Array,
    opts: { chunkSize?: number; algorithm?: DigestAlgorithm } = {},
  ): Promise<PushedBlob> {
    checkRepo(repo);
    const digest = computeDigest(bytes, opts.algorithm);
    const size = bytes.byteLength;
    if (await this.hasBlob(repo, digest))
      return { digest, size, skipped: true, chunks: 0, fallback: false };
    const chunkSize =
      opts.chunkSize ?? (size > this.chunkThreshold ? this.defaultChunkSize : undefined);
    if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize <= 0)) {
      throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
    }
    const ctx = { repo, reference: digest };
    const session = await this.startUpload(repo, ctx);
    let location = session.location;
    let chunks = 0;
    let fallback = false;
    let body: Uint8Array | undefined = bytes;
    if (chunkSize !== undefined) {
      const patched = await this.patchChunks(
        location,
        bytes,
        Math.max(chunkSize, session.minChunk),
        ctx,
      );
      if (patched.refused) {
        await this.cancelUpload(patched.location);
        location = (await this.startUpload(repo, ctx)).location;
        fallback = true;
      } else {
        location = patched.location;
        chunks = patched.chunks;
        body = undefined;
      }
    }
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const done = await this.requestUrl("PUT", url.toString(), {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(body?.byteLength ?? 0),
      },
      ...(body ? { body } : {}),
    });
    await this.expectStatus(done, [201], ctx);
    await done.body?.cancel();
    const header = done.headers.get("docker-content-digest");
    if (header && header !== digest) verifyDigest(bytes, header, `uploaded blob in ${repo}`);
    return { digest, size, skipped: false, chunks, fallback };
  }

  /** startUpload opens an upload session (POST) and reads its location and minimum chunk size. */
  private async startUpload(
    repo: string,
    ctx: { repo: string; reference: string },
  ): Promise<{ location: string; minChunk: number }> {
    const res = await this.request("POST", `/v2/${repo}/blobs/uploads/`, {
      headers: { "content-length": "0" },
    });
    await this.expectStatus(res, [202], ctx);
    await res.body?.cancel();
    const announced = Number(res.headers.get("oci-chunk-min-length") ?? "");
    const minChunk = Number.isSafeInteger(announced) && announced > 0 ? announced : 0;
    return { location: this.uploadLocation(res, ctx), minChunk };
  }

  /**
   * patchChunks sends the blob as PATCHes; `refused` is true (with the session's last location)
   * when the registry answered a chunk with a CHUNK_REFUSED status, so the caller can fall back.
   */
  private async patchChunks(
    location: string,
    bytes: Uint8Array,
    chunkSize: number,
    ctx: { repo: string; reference: string },
  ): Promise<{ refused: boolean; location: string; chunks: number }> {
    let chunks = 0;
    for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
      const chunk = bytes.subarray(offset, Math.min(bytes.byteLength, offset + chunkSize));
      const res = await this.requestUrl("PATCH", location, {
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${offset}-${offset + chunk.byteLength - 1}`,
          "content-length": String(chunk.byteLength),
        },
        body: chunk,
      });
      if (CHUNK_REFUSED.has(res.status)) {
        await res.body?.cancel();
        return { refused: true, location, chunks };
      }
      await this.expectStatus(res, [202], ctx);
      await res.body?.cancel();
      location = this.uploadLocation(res, ctx);
      chunks++;
    }
    return { refused: false, location, chunks };
  }

  /**
   * cancelUpload abandons an upload session (DELETE) so a refused chunked upload does not linger
   * until the registry purges it; it is best effort, as the fallback does not depend on it.
   */
  private async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.requestUrl("DELETE", location, {});
      await res.body?.cancel();
    } catch {
      // A registry that cannot cancel sessions expires them itself.
    }
  }

  private uploadLocation(res: Response, ctx: { repo: string; reference?: string }): string {
    const location = res.headers.get("location");
    if (!location) {
      throw new OciError("upload response carries no Location header", {
        code: "PROTOCOL",
        status: res.status,
        ...ctx,
      });
    }
    return new URL(location, this.baseUrl).toString();
  }

  private request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
  ): Promise<Response> {
    return this.requestUrl(method, `${this.baseUrl}${path}`, init);
  }

  private async requestUrl(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
  ): Promise<Response> {
    try {
      return await this.fetchFn(url, {
        method,
        headers: { ...this.headers, ...init.headers },
        ...(init.body ? { body: init.body } : {}),
        redirect: "follow",
      });
    } catch (cause) {
      throw new OciError(
        `${method} ${url} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        { code: "NETWORK", status: 0 },
        { cause },
      );
    }
  }

  /** expectStatus turns any unexpected status into an OciError carrying the registry's code. */
  private async expectStatus(
    res: Response,
    ok: readonly number[],
    ctx: { repo?: string; reference?: string },
  ): Promise<void> {
    if (ok.includes(res.status)) return;
    let code = `HTTP_${res.status}`;
    let message = `${res.status} ${res.statusText}`;
    let detail: unknown;
    try {
      const body = await this.readBounded(res, MAX_ERROR_BODY, ctx);
      const parsed = JSON.parse(new TextDecoder().decode(body)) as {
        errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }>;
      };
      const first = parsed.errors?.[0];
      if (first && typeof first.code === "string") {
        code = first.code;
        if (typeof first.message === "string") message = `${code}: ${first.message}`;
        detail = first.detail;
      }
    } catch {
      // HEAD responses and non-JSON bodies carry no error code; keep the HTTP status.
    }
    const what = [ctx.repo, ctx.reference].filter(Boolean).join("@");
    throw new OciError(`registry ${this.registry}${what ? ` (${what})` : ""}: ${message}`, {
      code,
      status: res.status,
      ...ctx,
      detail,
    });
  }

  /** readBounded reads a body but stops (and throws TOO_LARGE) as soon as it exceeds max. */
  private async readBounded(
    res: Response,
    max: number,
    ctx: { repo?: string; reference?: string },
  ): Promise<Uint8Array> {
    const tooLarge = () =>
      new OciError(`response larger than ${max} bytes`, {
        code: "TOO_LARGE",
        status: res.status,
        ...ctx,
      });
    const declared = Number(res.headers.get("content-length") ?? "NaN");
    if (declared > max) {
      await res.body?.cancel();
      throw tooLarge();
    }
    if (!res.body) return new Uint8Array(0);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = value as Uint8Array;
      total += chunk.byteLength;
      if (total > max) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
    return new Uint8Array(Buffer.concat(chunks, total));
  }
}

function checkRepo(repo: string): void {
  if (!REPOSITORY_RE.test(repo)) {
    throw new OciError(`invalid repository name ${JSON.stringify(repo)}`, {
      code: "NAME_INVALID",
      status: 0,
      repo,
    });
  }
}

function checkReference(reference: string, repo: string): void {
  if (isDigest(reference)) {
    parseDigest(reference);
    return;
  }
  if (!TAG_RE.test(reference)) {
    throw new OciError(`invalid tag ${JSON.stringify(reference)}`, {
      code: "TAG_INVALID",
      status: 0,
      repo,
      reference,
    });
  }
}

function parseJson(bytes: Uint8Array, ctx: { repo?: string; reference?: string }): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new OciError(
      "registry returned a body that is not JSON",
      { code: "PROTOCOL", status: 200, ...ctx },
      {
        cause,
      },
    );
  }
}

/** nextLink extracts the target of `rel="next"` from an RFC 8288 Link header. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(",")) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m?.[1] !== undefined && /rel="?next"?/.test(m[2] ?? "")) {
      const url = new URL(m[1], "http://registry.invalid");
      return `${url.pathname}${url.search}`;
    }
  }
  return undefined;
}
