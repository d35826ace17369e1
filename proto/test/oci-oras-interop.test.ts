import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  computeDigest,
  MARGO_APP_ARTIFACT_TYPE,
  MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  MARGO_COMPOSE_ARTIFACT_TYPE,
  MARGO_COMPOSE_LAYER_MEDIA_TYPE,
  OCI_EMPTY_DESCRIPTOR,
  OciClient,
  pullApplicationPackage,
  pullComposeComponent,
  pushApplicationPackage,
  pushComposeComponent,
  validatePackageManifest,
} from "../src/oci/index.js";
import { oras, REGISTRY, requireOras, requireRegistry, uniqueRepo } from "./oci-test-env.js";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const DESCRIPTION = `apiVersion: v1
id: interop-app
metadata:
  name: Interop App
  version: 1.2.3
  catalog:
    application:
      icon: ./resources/icon.png
      descriptionFile: ./resources/description.md
      licenseFile: ./resources/license.txt
    organization:
      - name: Margo Conformance
deploymentProfiles:
  - type: compose
    id: compose-profile
    components:
      - name: web
        properties:
          repository: oci://${REGISTRY}/margo-test/web
          revision: 0.1.0
`;

/** writePackage lays out a small package with three resources in a temp dir. */
async function writePackage(dir: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    "margo.yaml": Buffer.from(DESCRIPTION),
    "resources/icon.png": randomBytes(300),
    "resources/description.md": Buffer.from("# Interop\n\nPushed by both tools.\n"),
    "resources/license.txt": Buffer.from("Apache-2.0\n"),
  };
  await mkdir(join(dir, "resources"), { recursive: true });
  for (const [path, bytes] of Object.entries(files)) await writeFile(join(dir, path), bytes);
  return files;
}

interface OrasManifest {
  config: { digest: string };
  layers: Array<{ digest: string; mediaType: string; annotations?: Record<string, string> }>;
}

describe("interop with the real oras CLI", () => {
  const client = new OciClient({ registry: REGISTRY });
  let work: string;
  beforeAll(async () => {
    await requireRegistry();
    await requireOras();
    work = await mkdtemp(join(tmpdir(), "margo-oci-interop-"));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("pulls a package that oras pushed, byte-exact and valid", async () => {
    const dir = join(work, "oras-pkg");
    const files = await writePackage(dir);
    const repo = uniqueRepo("oras-package");
    await writeFile(join(dir, "empty.json"), "{}");
    await writeFile(
      join(dir, "annotations.json"),
      JSON.stringify({
        "resources/icon.png": { "org.margo.app.resource": "icon" },
        "resources/description.md": { "org.margo.app.resource": "descriptionFile" },
        "resources/license.txt": { "org.margo.app.resource": "licenseFile" },
        $manifest: { "org.opencontainers.image.vendor": "margo-conformance" },
      }),
    );
    const ref = `${REGISTRY}/${repo}:1.2.3`;
    await oras(
      [
        "push",
        "--plain-http",
        ref,
        "--artifact-type",
        MARGO_APP_ARTIFACT_TYPE,
        "--config",
        `empty.json:${OCI_EMPTY_DESCRIPTOR.mediaType}`,
        "--annotation-file",
        "annotations.json",
        `margo.yaml:${MARGO_APP_DESCRIPTION_MEDIA_TYPE}`,
        "resources/icon.png:application/vnd.margo.app.icon.v1+png",
        "resources/description.md:application/vnd.margo.app.descriptionFile.v1+markdown",
        "resources/license.txt:application/vnd.margo.app.licenseFile.v1+plain",
      ],
      dir,
    );
    const descriptor = JSON.parse(
      (await oras(["manifest", "fetch", "--plain-http", "--descriptor", ref])).toString(),
    );
    const orasManifestBytes = await oras(["manifest", "fetch", "--plain-http", ref]);
    const orasManifest = JSON.parse(orasManifestBytes.toString()) as OrasManifest;

    const pulled = await pullApplicationPackage(client, repo, "1.2.3");
    expect(pulled.problems).toEqual([]);
    expect(pulled.manifestDigest).toBe(descriptor.digest);
    expect(sha256(orasManifestBytes)).toBe(descriptor.digest);
    expect(pulled.version).toBe("1.2.3");
    expect(pulled.description).toBe(DESCRIPTION);
    expect(pulled.files.map((f) => f.digest)).toEqual(orasManifest.layers.map((l) => l.digest));
    for (const file of pulled.files) {
      const local = files[file.path];
      expect(local, file.path).toBeDefined();
      expect(Buffer.from(file.bytes).equals(local as Buffer), file.path).toBe(true);
      expect(sha256(file.bytes)).toBe(file.digest);
    }
    expect(pulled.files.map((f) => f.resource)).toEqual([
      undefined,
      "icon",
      "descriptionFile",
      "licenseFile",
    ]);
    expect(orasManifest.config.digest).toBe(OCI_EMPTY_DESCRIPTOR.digest);
  });

  it("publishes a package that oras pulls into identical files", async () => {
    const dir = join(work, "our-pkg");
    const files = await writePackage(dir);
    const repo = uniqueRepo("our-package");
    const pushed = await pushApplicationPackage(client, repo, dir);
    expect(pushed.tag).toBe("1.2.3");
    expect(validatePackageManifest(pushed.manifest, { tag: pushed.tag, version: "1.2.3" })).toEqual(
      [],
    );
    const out = join(work, "oras-pulled");
    await oras(["pull", "--plain-http", `${REGISTRY}/${repo}:1.2.3`, "-o", out]);
    for (const [path, bytes] of Object.entries(files)) {
      expect(Buffer.from(await readFile(join(out, path))).equals(bytes), path).toBe(true);
    }
    const fetched = await oras(["manifest", "fetch", "--plain-http", `${REGISTRY}/${repo}:1.2.3`]);
    expect(sha256(fetched)).toBe(pushed.digest);
    expect(Buffer.from(fetched).equals(Buffer.from(pushed.manifestBytes))).toBe(true);
    const fetchedByDigest = await oras([
      "manifest",
      "fetch",
      "--plain-http",
      `${REGISTRY}/${repo}@${pushed.digest}`,
    ]);
    expect(sha256(fetchedByDigest)).toBe(pushed.digest);
  });

  it("pulls a Compose component that oras pushed (spec recipe with layer annotations)", async () => {
    const dir = join(work, "oras-comp");
    await mkdir(dir, { recursive: true });
    const archive = gzipSync(randomBytes(2000));
    await writeFile(join(dir, "web-0.1.0.tar.gz"), archive);
    await writeFile(
      join(dir, "annotations.json"),
      JSON.stringify({
        "web-0.1.0.tar.gz": {
          "org.margo.component.type": "compose",
          "org.margo.component.version": "0.1.0",
          "org.opencontainers.image.version": "0.1.0",
          "org.opencontainers.image.description": "interop component",
        },
      }),
    );
    const repo = uniqueRepo("oras-component");
    const ref = `${REGISTRY}/${repo}:0.1.0`;
    await oras(
      [
        "push",
        "--plain-http",
        ref,
        "--artifact-type",
        MARGO_COMPOSE_ARTIFACT_TYPE,
        "--annotation-file",
        "annotations.json",
        `web-0.1.0.tar.gz:${MARGO_COMPOSE_LAYER_MEDIA_TYPE}`,
      ],
      dir,
    );
    const descriptor = JSON.parse(
      (await oras(["manifest", "fetch", "--plain-http", "--descriptor", ref])).toString(),
    );
    const orasManifest = JSON.parse(
      (await oras(["manifest", "fetch", "--plain-http", ref])).toString(),
    ) as OrasManifest;
    const pulled = await pullComposeComponent(client, repo, "0.1.0", { revision: "0.1.0" });
    expect(pulled.problems).toEqual([]);
    expect(pulled.manifestDigest).toBe(descriptor.digest);
    expect(pulled.version).toBe("0.1.0");
    expect(Buffer.from(pulled.archive ?? []).equals(archive)).toBe(true);
    expect(computeDigest(pulled.archive ?? new Uint8Array())).toBe(orasManifest.layers[0]?.digest);
    // oras --artifact-type writes exactly the empty descriptor our push writes.
    expect(
      (
        JSON.parse((await oras(["manifest", "fetch", "--plain-http", ref])).toString()) as {
          config: unknown;
        }
      ).config,
    ).toEqual(OCI_EMPTY_DESCRIPTOR);
  });

  it("flags the spec's `oras --annotation` recipe (manifest-level annotations) only with warnings", async () => {
    const dir = join(work, "oras-comp-manifest-ann");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "c.tar.gz"), gzipSync(Buffer.from("x")));
    const repo = uniqueRepo("oras-component-manifest-ann");
    await oras(
      [
        "push",
        "--plain-http",
        `${REGISTRY}/${repo}:1.0.0`,
        "--artifact-type",
        MARGO_COMPOSE_ARTIFACT_TYPE,
        "--annotation",
        "org.margo.component.type=compose",
        "--annotation",
        "org.margo.component.version=1.0.0",
        `c.tar.gz:${MARGO_COMPOSE_LAYER_MEDIA_TYPE}`,
      ],
      dir,
    );
    const pulled = await pullComposeComponent(client, repo, "1.0.0", { revision: "1.0.0" });
    expect(pulled.problems.map((p) => `${p.severity}:${p.rule}`).sort()).toEqual([
      "warning:oci.component-type-annotation",
      "warning:oci.component-version-annotation",
    ]);
  });

  it("publishes a Compose component that oras pulls and describes identically", async () => {
    const repo = uniqueRepo("our-component");
    const archive = gzipSync(randomBytes(3000));
    const pushed = await pushComposeComponent(client, repo, "2.0.0-rc.1", archive, {
      title: "web-2.0.0-rc.1.tar.gz",
      description: "a component",
      authors: "Margo Conformance",
    });
    const ref = `${REGISTRY}/${repo}:2.0.0-rc.1`;
    const out = join(work, "oras-comp-pulled");
    await oras(["pull", "--plain-http", ref, "-o", out]);
    expect(Buffer.from(await readFile(join(out, "web-2.0.0-rc.1.tar.gz"))).equals(archive)).toBe(
      true,
    );
    const descriptor = JSON.parse(
      (await oras(["manifest", "fetch", "--plain-http", "--descriptor", ref])).toString(),
    );
    expect(descriptor.digest).toBe(pushed.digest);
    const manifest = JSON.parse(
      (await oras(["manifest", "fetch", "--plain-http", ref])).toString(),
    ) as OrasManifest & {
      artifactType: string;
    };
    expect(manifest.artifactType).toBe(MARGO_COMPOSE_ARTIFACT_TYPE);
    expect(manifest.layers[0]?.annotations).toMatchObject({
      "org.margo.component.type": "compose",
      "org.margo.component.version": "2.0.0-rc.1",
    });
  });
});
