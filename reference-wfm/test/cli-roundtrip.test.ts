import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { fixturePackageOptions, listFixtures } from "@margo/fixtures";
import { OciClient, publishPackageDir } from "@margo/proto/oci";
import { validatePackageDir } from "@margo/proto/package";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonOf, MtlsClient } from "./support/mtls-client.js";

/**
 * Issue 3 acceptance: the CLI drives a full deploy/undeploy round trip from a fresh data
 * directory. Every `margo-wfm` step is a child process running the real bin shim; the device is
 * played over real mTLS with the credentials `client add` wrote; the application comes from the
 * real registry.
 */

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "../bin/margo-wfm");
const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const APP = "compose-multi";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function margo(...args: string[]): Promise<Run> {
  return new Promise((resolveRun) => {
    execFile(BIN, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolveRun({ code: typeof code === "number" ? code : 1, stdout, stderr });
    });
  });
}

/** Publish the fixture package (idempotent: same bytes, same digests) and return its reference. */
async function publishApp(): Promise<string> {
  const f = listFixtures().valid.find((x) => x.name === APP);
  if (!f) throw new Error(`no fixture ${APP}`);
  const checked = await validatePackageDir(f.dir, fixturePackageOptions(f));
  const client = new OciClient({ registry: REGISTRY });
  const pub = await publishPackageDir(client, f.dir, {
    packageRepo: `margo-fixtures/${checked.doc?.id ?? APP}/package`,
  });
  return `${REGISTRY}/${pub.pkg.repository}:${pub.pkg.tag}`;
}

let root: string;
let dataDir: string;
let server: ChildProcess | undefined;
let listening: { pid: number; management: { port: number }; grpc: { port: number } };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "margo-cli-roundtrip-"));
  dataDir = join(root, "wfm");
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) server.kill("SIGKILL");
  await rm(root, { recursive: true, force: true });
});

describe("margo-wfm round trip (child processes, real mTLS, real registry)", () => {
  it("init, serve, client add, app register, deploy; the device sees it; status; undeploy", async () => {
    const published = publishApp();
    const init = await margo(
      "init",
      "--data-dir",
      dataDir,
      "--trust-domain",
      "roundtrip.example",
      "--wfm-id",
      "wfm-rt",
      "--management-port",
      "0",
      "--trust-port",
      "0",
      "--grpc-port",
      "0",
      "--json",
    );
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(JSON.parse(init.stdout).operatorSpiffeId).toBe(
      "spiffe://roundtrip.example/operator/admin",
    );

    // Before serve: other commands name the fix and exit 3.
    const early = await margo("client", "list", "--data-dir", dataDir);
    expect(early.code).toBe(3);
    expect(early.stderr).toContain(`margo-wfm serve --data-dir ${dataDir}`);

    const serve = spawn(BIN, ["serve", "--data-dir", dataDir, "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    server = serve;
    const lines = createInterface({ input: serve.stdout });
    const first = await new Promise<string>((ok, fail) => {
      lines.once("line", ok);
      serve.once("exit", (c) => fail(new Error(`serve exited ${c}`)));
    });
    listening = JSON.parse(first);
    expect(listening.management.port).toBeGreaterThan(0);
    const runFile = JSON.parse(await readFile(join(dataDir, "run.json"), "utf8"));
    expect(runFile).toMatchObject({ pid: listening.pid, grpc: { port: listening.grpc.port } });

    const devDir = join(root, "device-creds");
    const add = await margo(
      "client",
      "add",
      "edge-1",
      "--name",
      "Edge one",
      "--out",
      devDir,
      "--data-dir",
      dataDir,
    );
    expect(add.code).toBe(0);
    expect((await stat(join(devDir, "svid.key"))).mode & 0o777).toBe(0o600);
    const again = await margo("client", "add", "edge-1", "--out", devDir, "--data-dir", dataDir);
    expect(again.code).toBe(1); // conflict reported by the WFM

    const ref = await published;
    const reg = await margo(
      "app",
      "register",
      ref,
      "--plain-http",
      "--json",
      "--data-dir",
      dataDir,
    );
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.stdout).application.applicationId).toBe(APP);

    const dep = await margo(
      "deploy",
      APP,
      "--client",
      "edge-1",
      "--device",
      "edge-1-dev",
      "--param",
      "apiPort=9191",
      "--json",
      "--data-dir",
      dataDir,
    );
    expect(dep.stderr).toBe("");
    expect(dep.code).toBe(0);
    const deployment = JSON.parse(dep.stdout).deployment;
    const yamlText = Buffer.from(deployment.yaml, "base64").toString("utf8");
    expect(yamlText).toContain("9191");

    // The device, over mTLS with exactly the files `client add` wrote.
    const device = new MtlsClient({
      port: listening.management.port,
      trustBundlePem: await readFile(join(devDir, "bundle.pem"), "utf8"),
      expectedServerId: "spiffe://roundtrip.example/margo/wfm/wfm-rt",
      client: {
        certificateChainPem: await readFile(join(devDir, "svid.pem"), "utf8"),
        privateKeyPem: await readFile(join(devDir, "svid.key"), "utf8"),
      },
      keepAlive: true,
    });
    try {
      const caps = await device.sendJson("PUT", "/api/v1/capabilities/edge-1-dev", {
        properties: {
          id: "edge-1-dev",
          vendor: "CLI round trip",
          modelNumber: "RT-1",
          serialNumber: "sn-rt-1",
          cpus: [{ cores: 2, architecture: "amd64" }],
          memory: "4 Gi",
          storage: "32 Gi",
          peripherals: [],
          interfaces: [{ type: "ethernet" }],
          otelCollector: false,
          supportedRuntimes: ["oci"],
          supportedDeploymentTypes: ["compose"],
        },
      });
      expect(caps.status).toBe(201);

      const manifestRes = await device.get("/api/v1/deployments");
      expect(manifestRes.status).toBe(200);
      const manifest = jsonOf(manifestRes) as {
        manifestVersion: number;
        bundle: unknown;
        deployments: { deploymentId: string; digest: string; url: string }[];
      };
      expect(manifest.deployments).toHaveLength(1);
      const entry = manifest.deployments[0];
      expect(entry?.deploymentId).toBe(deployment.deploymentId);
      const yamlRes = await device.get(entry?.url ?? "");
      expect(yamlRes.status).toBe(200);
      const digest = `sha256:${createHash("sha256").update(yamlRes.body).digest("hex")}`;
      expect(digest).toBe(entry?.digest);
      expect(yamlRes.body.toString("utf8")).toBe(yamlText);

      const status = await device.sendJson(
        "POST",
        `/api/v1/deployments/${deployment.deploymentId}/status`,
        {
          deploymentId: deployment.deploymentId,
          adoptedManifestVersion: manifest.manifestVersion,
          status: { state: "installed" },
          components: ["store", "api", "web"].map((name) => ({ name, state: "installed" })),
        },
      );
      expect([200, 201]).toContain(status.status);

      const statuses = await margo(
        "status",
        "list",
        "--client",
        "edge-1",
        "--json",
        "--data-dir",
        dataDir,
      );
      expect(statuses.code).toBe(0);
      const reported = JSON.parse(statuses.stdout).statuses;
      expect(reported).toHaveLength(1);
      expect(reported[0].status.deploymentId).toBe(deployment.deploymentId);
      expect(reported[0].status.status.state).toBe("DEPLOYMENT_STATE_INSTALLED");

      const show = await margo(
        "device",
        "show",
        "edge-1-dev",
        "--client",
        "edge-1",
        "--data-dir",
        dataDir,
      );
      expect(show.code).toBe(0);
      expect(show.stdout).toContain("RT-1");

      const un = await margo("undeploy", deployment.deploymentId, "--data-dir", dataDir);
      expect(un.code).toBe(0);
      const after = await device.get("/api/v1/deployments");
      const empty = jsonOf(after) as {
        manifestVersion: number;
        bundle: unknown;
        deployments: unknown[];
      };
      expect(empty.deployments).toEqual([]);
      expect(empty.bundle).toBeNull();
      expect(empty.manifestVersion).toBeGreaterThan(manifest.manifestVersion);
    } finally {
      device.close();
    }

    // SIGTERM: graceful stop, exit 0, run.json removed.
    const exited = new Promise<number | null>((ok) => serve.once("exit", ok));
    serve.kill("SIGTERM");
    expect(await exited).toBe(0);
    await expect(stat(join(dataDir, "run.json"))).rejects.toThrow();
  }, 120_000);

  it("--help exits 0 from the bin shim; a usage error exits 2 with a message", async () => {
    const [overview, addHelp, deployHelp, bad] = await Promise.all([
      margo("--help"),
      margo("client", "add", "--help"),
      margo("deploy", "--help"),
      margo("deploy", "app", "--client", "c", "--data-dir", "/nonexistent"),
    ]);
    expect(overview.code).toBe(0);
    expect(overview.stdout).toContain("Exit codes:");
    expect(addHelp.code).toBe(0);
    expect(addHelp.stdout).toContain("--out DIR");
    expect(deployHelp.code).toBe(0);
    expect(deployHelp.stdout).toContain("--params-file FILE");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("deploy needs --device D");
  }, 60_000);
});
