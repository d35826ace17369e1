import { describe, expect, it } from "vitest";
import { nextLink } from "./client.js";
import {
  computeDigest,
  DigestMismatchError,
  DigestVerifier,
  InvalidDigestError,
  parseDigest,
  verifyDigest,
} from "./digest.js";
import {
  OCI_EMPTY_BYTES,
  OCI_EMPTY_DESCRIPTOR,
  resourceFormat,
  resourceMediaType,
} from "./media-types.js";
import { parseOciRepositoryUri, tagMatchesVersion, versionToTag } from "./reference.js";

const hello = new TextEncoder().encode("hello");

describe("digests", () => {
  it("computes sha256 and sha512 of exact bytes", () => {
    expect(computeDigest(hello)).toBe(
      "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    );
    expect(computeDigest(hello, "sha512")).toMatch(/^sha512:9b71d224bd62f378/);
    expect(computeDigest(OCI_EMPTY_BYTES)).toBe(OCI_EMPTY_DESCRIPTOR.digest);
    expect(Buffer.from(OCI_EMPTY_DESCRIPTOR.data ?? "", "base64")).toEqual(
      Buffer.from(OCI_EMPTY_BYTES),
    );
  });

  it("rejects unsupported algorithms and malformed digests", () => {
    expect(() => parseDigest(`md5:${"a".repeat(32)}`)).toThrow(InvalidDigestError);
    expect(() => parseDigest("sha256:ABC")).toThrow(InvalidDigestError);
    expect(() => parseDigest("nocolon")).toThrow(InvalidDigestError);
    expect(() => verifyDigest(hello, `sha384:${"a".repeat(96)}`, "x")).toThrow(InvalidDigestError);
  });

  it("throws DigestMismatchError on other content, buffered and streamed", () => {
    const digest = computeDigest(hello, "sha512");
    expect(() => verifyDigest(hello, digest, "x")).not.toThrow();
    expect(() => verifyDigest(new TextEncoder().encode("hellO"), digest, "x")).toThrow(
      DigestMismatchError,
    );
    const v = new DigestVerifier(computeDigest(hello), "stream");
    v.update(hello.subarray(0, 2));
    v.update(new TextEncoder().encode("LLO"));
    expect(() => v.finish()).toThrow(DigestMismatchError);
  });
});

describe("references and media types", () => {
  it("splits oci:// repository URIs", () => {
    expect(parseOciRepositoryUri("oci://127.0.0.1:5000/margo-fixtures/app/web")).toEqual({
      registry: "127.0.0.1:5000",
      repository: "margo-fixtures/app/web",
    });
    expect(() => parseOciRepositoryUri("https://x/y")).toThrow();
    expect(() => parseOciRepositoryUri("oci://x/Upper")).toThrow();
  });

  it("maps build metadata + to _ in tags", () => {
    expect(versionToTag("1.0.0+build.5")).toBe("1.0.0_build.5");
    expect(tagMatchesVersion("1.0.0_build.5", "1.0.0+build.5")).toBe(true);
    expect(tagMatchesVersion("1.0.1", "1.0.0")).toBe(false);
  });

  it("derives resource formats from extensions", () => {
    expect(resourceFormat("resources/a.PNG")).toBe("png");
    expect(resourceFormat("x.jpg")).toBe("jpeg");
    expect(resourceFormat("x.md")).toBe("markdown");
    expect(resourceFormat("LICENSE")).toBe("octet-stream");
    expect(resourceMediaType("releaseNotes", "./notes.txt")).toBe(
      "application/vnd.margo.app.releaseNotes.v1+plain",
    );
  });

  it("parses Link rel=next", () => {
    expect(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"')).toBe("/v2/a/tags/list?n=2&last=b");
    expect(nextLink('<http://h:5000/v2/a/tags/list?last=c>; rel="next"')).toBe(
      "/v2/a/tags/list?last=c",
    );
    expect(nextLink('</x>; rel="prev"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
  });
});
