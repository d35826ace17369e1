import { describe, expect, it } from "vitest";
import { parsePackageReference } from "./applications.js";
import { clientIdProblem } from "./client-id.js";
import { deploymentName } from "./deployment-builder.js";

const ID = "9f8e7d6c-5b4a-4321-8fed-cba987654321";
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe("deploymentName", () => {
  it("item 60: a Kubernetes-safe name of at most 63 characters for any valid application id", () => {
    for (const appId of ["app", "a".repeat(200), "-lead-and-trail-", "x-".repeat(60), "---"]) {
      const name = deploymentName(appId, ID);
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(DNS_LABEL);
      expect(name.endsWith("-9f8e7d6c")).toBe(true);
    }
    expect(deploymentName("web", ID)).toBe("web-9f8e7d6c");
  });
});

describe("clientIdProblem", () => {
  it("item 16: unreserved characters only, never empty, '.' or '..'", () => {
    for (const ok of ["a", "dev-1", "A.b_c~d", "..."]) expect(clientIdProblem(ok)).toBeUndefined();
    for (const bad of ["", ".", "..", "a/b", "a:b", "a%20b", " "])
      expect(clientIdProblem(bad)).toBeTypeOf("string");
  });
});

describe("parsePackageReference", () => {
  it("splits registry, repository and tag or digest, with or without oci://", () => {
    expect(parsePackageReference("127.0.0.1:5000/a/b/package:1.2.3")).toEqual({
      registry: "127.0.0.1:5000",
      repository: "a/b/package",
      reference: "1.2.3",
    });
    const digest = `sha256:${"ab".repeat(32)}`;
    expect(parsePackageReference(`oci://reg.example/x@${digest}`)).toEqual({
      registry: "reg.example",
      repository: "x",
      reference: digest,
    });
  });

  it("refuses references without a tag or with bad parts", () => {
    for (const bad of ["reg/x", "x:1", "reg/X:1", "reg/x:+bad", "reg/x@md5:00"])
      expect(() => parsePackageReference(bad)).toThrow(/invalid OCI reference/);
  });
});
