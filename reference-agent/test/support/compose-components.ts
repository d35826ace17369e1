import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePackageOptions, listFixtures } from "@margo/fixtures";
import { OciClient, publishPackageDir, pushComposeComponent } from "@margo/proto/oci";
import { packComposeArchive, validatePackageDir } from "@margo/proto/package";
import { DockerApi } from "../../src/providers/compose/docker-api.js";
import { COMPOSE_PROJECT_LABEL, LABEL } from "../../src/providers/compose/project.js";

/** The registry tests publish to (bootstrap runs it on loopback). */
export const TEST_REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
export const FIXTURE_IMAGE =
  process.env.MARGO_FIXTURE_IMAGE ?? "127.0.0.1:5000/margo-fixtures/busybox:1";

/** Where a published component is, as an ApplicationDeployment names it. */
export interface PublishedRef {
  repository: string;
  revision: string;
}

/**
 * Publish a valid fixture app's components (once per process) and return them by name, as its
 * margo.yaml names them. Publishing is idempotent (same bytes, same digests).
 */
export async function publishFixtureComponents(app: string): Promise<Record<string, PublishedRef>> {
  const f = listFixtures().valid.find((x) => x.name === app);
  if (!f) throw new Error(`no valid fixture named ${app}`);
  const checked = await validatePackageDir(f.dir, fixturePackageOptions(f));
  const client = new OciClient({ registry: TEST_REGISTRY });
  const pub = await publishPackageDir(client, f.dir, {
    packageRepo: `margo-fixtures/${checked.doc?.id ?? app}/package`,
  });
  const out: Record<string, PublishedRef> = {};
  for (const c of pub.components) out[c.name] = { repository: c.repository, revision: c.revision };
  return out;
}

/**
 * Pack a one-file Compose project (compose.yaml text) as a Compose Archive and push it as a Margo
 * component to `margo-t/<name>:<version>` in the test registry: the negative cases (a service that
 * exits 1, one that is slow to become healthy) are real components, pulled like any other.
 */
export async function publishComposeText(
  name: string,
  composeYaml: string,
  version = "1.0.0",
): Promise<PublishedRef> {
  const dir = await mkdtemp(join(tmpdir(), "margo-t-comp-"));
  try {
    const top = join(dir, name);
    await mkdir(top);
    await writeFile(join(top, "compose.yaml"), composeYaml);
    const bytes = await packComposeArchive(top);
    const client = new OciClient({ registry: TEST_REGISTRY });
    await pushComposeComponent(client, `margo-t/${name}`, version, bytes);
    return { repository: `oci://${TEST_REGISTRY}/margo-t/${name}`, revision: version };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A registry proxy on loopback that passes everything through to the test registry but flips one
 * byte of every blob it serves (manifests untouched): what a compromised mirror or a corrupted
 * transfer looks like to the agent. Real registry, real HTTP, real bytes.
 */
export async function startTamperingProxy(
  upstream = TEST_REGISTRY,
): Promise<{ host: string; close: () => Promise<void> }> {
  const [uHost, uPort] = upstream.split(":");
  const server: Server = createServer((req, res) => {
    const up = request(
      {
        host: uHost,
        port: Number(uPort ?? 80),
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream },
      },
      (ur) => {
        const chunks: Buffer[] = [];
        ur.on("data", (c: Buffer) => chunks.push(c));
        ur.on("end", () => {
          const body = Buffer.concat(chunks);
          const isBlob = /\/blobs\/sha256:/.test(req.url ?? "");
          if (isBlob && body.length > 0 && req.method === "GET") {
            body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
          }
          const headers = { ...ur.headers };
          delete headers["transfer-encoding"];
          headers["content-length"] = String(body.length);
          res.writeHead(ur.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    up.on("error", (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Remove every container, network and volume a test device left (by our device label and by
 * project), so a failed test does not leak into the next run.
 */
export async function cleanupDevice(
  socket: string,
  deviceId: string,
  knownProjects: readonly string[] = [],
): Promise<void> {
  const docker = new DockerApi(socket);
  const containers = await docker.listContainers({ [LABEL.deviceId]: deviceId });
  const projects = new Set(knownProjects);
  for (const c of containers) {
    const p = c.Labels[COMPOSE_PROJECT_LABEL];
    if (p !== undefined) projects.add(p);
  }
  for (const c of containers) await docker.removeContainer(c.Id);
  for (const p of projects) {
    for (const c of await docker.listContainers({ [COMPOSE_PROJECT_LABEL]: p }))
      await docker.removeContainer(c.Id);
    for (const n of await docker.listNetworks({ [COMPOSE_PROJECT_LABEL]: p }))
      await docker.removeNetwork(n.Id);
    for (const v of await docker.listVolumes({ [COMPOSE_PROJECT_LABEL]: p }))
      await docker.removeVolume(v.Name);
  }
}
