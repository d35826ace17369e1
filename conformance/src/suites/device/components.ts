import { OciClient, pushComposeComponent } from "@margo/proto/oci";
import type { ComponentRef, TestComponents } from "./context.js";
import { type TarEntry, tarGz } from "./instrumented-wfm/tar-gz.js";

/**
 * The Compose components the device checks deploy, pushed to the harness's registry once per run
 * as real Margo components (the artifact type, layer media type and annotations a device expects),
 * so a device pulls them exactly as it would pull a vendor's. The archives are written here by
 * hand because one of them must be invalid in a way a normal packer refuses to produce.
 */

/** The version (= tag) every test component is published under. */
export const COMPONENT_VERSION = "1.0.0";
/** Repository folder in the registry; kept apart from the fixtures and the vendors' own. */
export const COMPONENT_REPO_PREFIX = "margo-conformance/components";

export interface PublishComponentsOptions {
  /** host:port of the registry (plain HTTP on loopback). */
  registry: string;
  plainHttp: boolean;
  /** The image every service runs (must be preloaded into the Compose host). */
  image: string;
}

/** The image the components run, as the fixtures publish it. */
export function defaultComponentImage(registry: string): string {
  return process.env.MARGO_FIXTURE_IMAGE ?? `${registry}/margo-fixtures/busybox:1`;
}

/** compose.yaml of each component (exported for the unit test and for documentation). */
export function componentComposeYaml(kind: keyof TestComponents, image: string): string {
  const svc = (body: string[]) =>
    ["services:", "  app:", `    image: ${image}`, ...body.map((l) => `    ${l}`), ""].join("\n");
  switch (kind) {
    case "running":
    case "unsafeArchive":
      return svc(["init: true", 'command: ["sleep", "3600"]']);
    case "exitsNonZero":
      return svc(['restart: "no"', 'command: ["sh", "-c", "exit 1"]']);
    case "neverReady":
      // start_period keeps the health "starting" (failures in it do not count), so a wait with a
      // short timeout runs out rather than seeing "unhealthy" at once.
      return svc([
        "init: true",
        'command: ["sleep", "3600"]',
        "healthcheck:",
        '  test: ["CMD", "false"]',
        "  interval: 1s",
        "  start_period: 1h",
      ]);
  }
}

/** Compose Archive bytes of one component: `<top>/compose.yaml` (+ the `../` entry when unsafe). */
export function componentArchive(kind: keyof TestComponents, image: string): Buffer {
  const top = archiveTop(kind);
  const entries: TarEntry[] = [
    { name: `${top}/`, type: "dir" },
    { name: `${top}/compose.yaml`, bytes: Buffer.from(componentComposeYaml(kind, image)) },
  ];
  if (kind === "unsafeArchive") {
    // Path traversal out of the extraction folder (item 74): must be refused, never written.
    entries.push({ name: "../margo-conformance-escape.txt", bytes: Buffer.from("escaped\n") });
  }
  return tarGz(entries);
}

const archiveTop = (kind: keyof TestComponents) =>
  kind.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Push all four components; idempotent (same bytes, same digests). */
export async function publishTestComponents(o: PublishComponentsOptions): Promise<TestComponents> {
  const client = new OciClient({ registry: o.registry, plainHttp: o.plainHttp });
  const kinds: Array<keyof TestComponents> = [
    "running",
    "exitsNonZero",
    "neverReady",
    "unsafeArchive",
  ];
  const refs = await Promise.all(
    kinds.map(async (kind): Promise<[keyof TestComponents, ComponentRef]> => {
      const repo = `${COMPONENT_REPO_PREFIX}/${archiveTop(kind)}`;
      await pushComposeComponent(client, repo, COMPONENT_VERSION, componentArchive(kind, o.image), {
        title: `${archiveTop(kind)}.tar.gz`,
      });
      return [kind, { repository: `oci://${o.registry}/${repo}`, revision: COMPONENT_VERSION }];
    }),
  );
  return Object.fromEntries(refs) as unknown as TestComponents;
}
