import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type FetchLike,
  OCI_RULE_IDS,
  OciClient,
  pullApplicationPackage,
  pullComposeComponent,
  pullHelmChart,
  pushApplicationPackage,
  pushComposeComponent,
  pushHelmChart,
} from "../src/oci/index.js";
import type { Problem } from "../src/problem.js";
import { REGISTRY, requireRegistry, uniqueRepo } from "./oci-test-env.js";

/**
 * A registry (or a proxy in front of it) can serve a manifest whose descriptors name digests we
 * cannot verify. The pull functions must report that as a problem next to every layout problem,
 * not throw: these tests serve such manifests by rewriting the real registry's answer.
 */

type Rewrite = (manifest: Record<string, unknown>) => void;

/**
 * rewritingFetch edits every manifest the real registry returns and drops the digest header (the
 * bytes changed); `headerDigest` replaces it instead, to play a registry announcing a bad digest.
 * Blob URLs are recorded so a test can see what was (not) requested.
 */
function rewritingFetch(
  rewrite: Rewrite,
  headerDigest?: string,
): { fetch: FetchLike; blobUrls: string[] } {
  const blobUrls: string[] = [];
  return {
    blobUrls,
    fetch: async (input, init) => {
      if (input.includes("/blobs/")) blobUrls.push(input);
      const res = await fetch(input, init);
      if ((init?.method ?? "GET") !== "GET" || !input.includes("/manifests/")) return res;
      if (res.status !== 200) return res;
      const manifest = (await res.json()) as Record<string, unknown>;
      rewrite(manifest);
      const headers = new Headers(res.headers);
      headers.delete("content-length");
      if (headerDigest === undefined) headers.delete("docker-content-digest");
      else headers.set("docker-content-digest", headerDigest);
      return new Response(JSON.stringify(manifest), { status: 200, headers });
    },
  };
}

const layer = (m: Record<string, unknown>, i: number) =>
  (m.layers as Array<Record<string, unknown>>)[i] as Record<string, unknown>;

const at = (problems: readonly Problem[], rule: string) =>
  problems.filter((p) => p.rule === rule).map((p) => p.pointer);

const BAD_DIGESTS = [
  `sha256:${"ABC".repeat(21)}D`,
  "sha256:ABC",
  `md5:${"a".repeat(32)}`,
  `SHA256:${"a".repeat(64)}`,
  "no-colon",
];

describe("pulls report malformed digests as problems", () => {
  const client = new OciClient({ registry: REGISTRY });
  beforeAll(requireRegistry);

  it("an application package with a malformed layer digest", async () => {
    const repo = uniqueRepo("bad-digest-package");
    const description = [
      "apiVersion: margo.org/v1-alpha1",
      "kind: ApplicationDescription",
      "metadata:",
      "  id: t",
      "  name: T",
      "  version: 1.0.0",
      "  catalog:",
      "    application:",
      "      icon: resources/icon.png",
      "",
    ].join("\n");
    await pushApplicationPackage(client, repo, [
      { path: "margo.yaml", bytes: new TextEncoder().encode(description) },
      { path: "resources/icon.png", bytes: randomBytes(64) },
    ]);
    for (const bad of BAD_DIGESTS) {
      const wrapper = rewritingFetch((m) => {
        layer(m, 1).digest = bad;
        // A second, unrelated layout problem must still come out of the same pull.
        m.artifactType = "application/vnd.example.other+json";
        delete (layer(m, 1).annotations as Record<string, string>)["org.margo.app.resource"];
      });
      const evil = new OciClient({ registry: REGISTRY, fetch: wrapper.fetch });
      const pulled = await pullApplicationPackage(evil, repo, "1.0.0");
      expect(at(pulled.problems, "oci.digest-invalid"), bad).toEqual(["/layers/1/digest"]);
      expect(at(pulled.problems, "oci.package-artifact-type")).toEqual(["/artifactType"]);
      expect(at(pulled.problems, "oci.resource-annotation")).toHaveLength(1);
      for (const p of pulled.problems) expect(OCI_RULE_IDS.has(p.rule), p.rule).toBe(true);
      // The intact description layer was still read; the malformed one was never requested.
      expect(pulled.description).toBe(description);
      expect(pulled.files.map((f) => f.path)).toEqual(["margo.yaml"]);
      expect(
        wrapper.blobUrls.some((u) => u.includes(encodeURIComponent(bad)) || u.endsWith(bad)),
      ).toBe(false);
    }
  });

  it("a Compose component with a malformed layer digest", async () => {
    const repo = uniqueRepo("bad-digest-compose");
    await pushComposeComponent(client, repo, "1.2.3", randomBytes(256));
    const wrapper = rewritingFetch((m) => {
      layer(m, 0).digest = "sha256:ABC";
      m.artifactType = "application/vnd.docker.compose.project";
    });
    const evil = new OciClient({ registry: REGISTRY, fetch: wrapper.fetch });
    const pulled = await pullComposeComponent(evil, repo, "1.2.3", { revision: "1.2.4" });
    expect(at(pulled.problems, "oci.digest-invalid")).toEqual(["/layers/0/digest"]);
    expect(at(pulled.problems, "oci.component-artifact-type")).toEqual(["/artifactType"]);
    expect(at(pulled.problems, "oci.tag-version-mismatch").length).toBeGreaterThan(0);
    expect(pulled.archive).toBeUndefined();
    expect(pulled.version).toBe("1.2.3");
  });

  it("a Helm chart with malformed config and layer digests", async () => {
    const repo = uniqueRepo("bad-digest-helm");
    await pushHelmChart(client, repo, randomBytes(256), { name: "c", version: "0.1.0" });
    const wrapper = rewritingFetch((m) => {
      (m.config as Record<string, unknown>).digest = `md5:${"0".repeat(32)}`;
      layer(m, 0).digest = `SHA256:${"a".repeat(64)}`;
      (m.config as Record<string, unknown>).mediaType = "application/json";
    });
    const evil = new OciClient({ registry: REGISTRY, fetch: wrapper.fetch });
    const pulled = await pullHelmChart(evil, repo, "0.1.0");
    expect(at(pulled.problems, "oci.digest-invalid").sort()).toEqual([
      "/config/digest",
      "/layers/0/digest",
    ]);
    expect(at(pulled.problems, "oci.helm-config-media-type")).toEqual(["/config/mediaType"]);
    expect(pulled.chartTgz).toBeUndefined();
    expect(pulled.chartMeta).toBeUndefined();
  });

  it("a registry announcing a malformed Docker-Content-Digest", async () => {
    const repo = uniqueRepo("bad-digest-header");
    await pushComposeComponent(client, repo, "1.0.0", randomBytes(64));
    const wrapper = rewritingFetch(() => {}, "sha256:NOT-HEX");
    const evil = new OciClient({ registry: REGISTRY, fetch: wrapper.fetch });
    const pulled = await pullComposeComponent(evil, repo, "1.0.0");
    expect(at(pulled.problems, "oci.digest-invalid")).toEqual([""]);
    expect(pulled.manifest).toBeUndefined();
  });

  it("a registry announcing a malformed digest for a blob", async () => {
    const repo = uniqueRepo("bad-blob-header");
    await pushComposeComponent(client, repo, "1.0.0", randomBytes(64));
    const badHeader: FetchLike = async (input, init) => {
      const res = await fetch(input, init);
      if (!input.includes("/blobs/") || res.status !== 200) return res;
      const headers = new Headers(res.headers);
      headers.set("docker-content-digest", "sha256:XYZ");
      return new Response(await res.arrayBuffer(), { status: 200, headers });
    };
    const evil = new OciClient({ registry: REGISTRY, fetch: badHeader });
    const pulled = await pullComposeComponent(evil, repo, "1.0.0");
    expect(at(pulled.problems, "oci.digest-invalid")).toEqual(["/layers/0/digest"]);
    expect(pulled.archive).toBeUndefined();
  });
});
