import { createHash, type Hash } from "node:crypto";

/**
 * Content digests as OCI defines them (`algorithm:encoded`). Every byte we pull is checked
 * against one of these, because a Margo device MUST verify a component's digest before it
 * extracts it, and a registry or proxy in between can serve anything.
 */

/** Algorithms the OCI image spec registers; anything else is refused rather than trusted. */
export type DigestAlgorithm = "sha256" | "sha512";

const ENCODED_RE: Readonly<Record<DigestAlgorithm, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** InvalidDigestError: a digest string is malformed or uses an algorithm we cannot verify. */
export class InvalidDigestError extends Error {
  readonly digest: string;
  constructor(digest: string, why: string) {
    super(`invalid digest ${JSON.stringify(digest)}: ${why}`);
    this.name = "InvalidDigestError";
    this.digest = digest;
  }
}

/** DigestMismatchError: bytes do not hash to the digest they were requested or announced by. */
export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  /** What was being verified, e.g. "blob sha256:... in margo-fixtures/app/package". */
  readonly subject: string;
  constructor(subject: string, expected: string, actual: string) {
    super(`digest mismatch for ${subject}: expected ${expected}, got ${actual}`);
    this.name = "DigestMismatchError";
    this.expected = expected;
    this.actual = actual;
    this.subject = subject;
  }
}

/** parseDigest splits and checks a digest; it throws InvalidDigestError so callers never hash blindly. */
export function parseDigest(digest: string): { algorithm: DigestAlgorithm; encoded: string } {
  const colon = digest.indexOf(":");
  if (colon <= 0) throw new InvalidDigestError(digest, "expected <algorithm>:<hex>");
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new InvalidDigestError(digest, `unsupported algorithm ${JSON.stringify(algorithm)}`);
  }
  if (!ENCODED_RE[algorithm].test(encoded)) {
    throw new InvalidDigestError(
      digest,
      `encoded part is not lowercase hex of ${algorithm} length`,
    );
  }
  return { algorithm, encoded };
}

/** isDigest tells whether a manifest reference is a digest rather than a tag. */
export function isDigest(reference: string): boolean {
  return reference.includes(":");
}

/** computeDigest hashes exact bytes; sha256 is what registries and oras produce by default. */
export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** verifyDigest throws DigestMismatchError unless the bytes hash to `expected`. */
export function verifyDigest(bytes: Uint8Array, expected: string, subject: string): void {
  const { algorithm } = parseDigest(expected);
  const actual = computeDigest(bytes, algorithm);
  if (actual !== expected) throw new DigestMismatchError(subject, expected, actual);
}

/**
 * DigestVerifier hashes a stream incrementally, so large blobs are checked without holding them
 * in memory; `finish()` throws on mismatch after the last chunk.
 */
export class DigestVerifier {
  readonly expected: string;
  readonly subject: string;
  private readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private bytes = 0;
  constructor(expected: string, subject: string) {
    this.algorithm = parseDigest(expected).algorithm;
    this.hash = createHash(this.algorithm);
    this.expected = expected;
    this.subject = subject;
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }
  get size(): number {
    return this.bytes;
  }
  finish(): void {
    const actual = `${this.algorithm}:${this.hash.digest("hex")}`;
    if (actual !== this.expected)
      throw new DigestMismatchError(this.subject, this.expected, actual);
  }
}
