import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { admin } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../src/cli/errors.js";
import { runCli } from "../src/cli/main.js";
import type { CliIo } from "../src/cli/output.js";
import { writeRunInfo } from "../src/cli/run-file.js";
import { defaultConfig, saveConfig } from "../src/config.js";
import type { CreateDeploymentInput, ParameterValues } from "../src/core/api.js";
import { WfmError } from "../src/core/errors.js";
import { startGrpcServer } from "../src/grpc/server.js";
import type { RunningGrpcServer } from "../src/grpc/server-contract.js";
import { MemoryCore, TestIdentity } from "./grpc-support.js";

/** Keeps deployments in a map and records what the edge passed in; manifests are not needed here. */
class RecordingCore extends MemoryCore {
  readonly deployments = new Map<string, admin.Deployment>();
  lastCreate: CreateDeploymentInput | undefined;
  lastUpdate: ParameterValues | undefined;

  override async createDeployment(input: CreateDeploymentInput): Promise<admin.Deployment> {
    if (!this.accepted.has(input.clientId)) throw new WfmError("not-found", "no such client");
    this.lastCreate = input;
    const d: admin.Deployment = {
      deploymentId: `00000000-0000-4000-8000-${String(this.deployments.size + 1).padStart(12, "0")}`,
      clientId: input.clientId,
      deviceId: input.deviceId,
      applicationId: input.applicationId,
      version: input.version ?? "1.0.0",
      yaml: Buffer.from(JSON.stringify(input.parameters ?? {})),
      digest: "sha256:00",
      manifestVersion: 2n ** 64n - 2n,
    };
    this.deployments.set(d.deploymentId, d);
    return d;
  }

  override async updateDeployment(id: string, parameters: ParameterValues) {
    const d = this.deployments.get(id);
    if (!d) throw new WfmError("not-found", `no deployment ${id}`);
    this.lastUpdate = parameters;
    return { ...d, manifestVersion: d.manifestVersion + 1n };
  }

  override async deleteDeployment(id: string): Promise<void> {
    if (!this.deployments.delete(id)) throw new WfmError("not-found", `no deployment ${id}`);
  }
}

/**
 * The CLI against the real admin gRPC edge over real mTLS on loopback (the core and CA behind the
 * edge are the gRPC tests' stand-ins, so this runs without the composition root). Covers what the
 * full round trip cannot provoke cheaply: problem details and exit codes of refusals, a server
 * with the wrong SPIFFE ID, and a WFM that is not running.
 */

let identity: TestIdentity;
let core: RecordingCore;
let server: RunningGrpcServer;
let dataDir: string;

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

async function cli(...argv: string[]) {
  const io = capture();
  const code = await runCli([...argv, "--data-dir", dataDir], io, {});
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
}

async function dataDirFor(wfmId: string, grpcPort: number | undefined): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "margo-cli-admin-"));
  const config = defaultConfig(dir, { trustDomain: "example.org", wfmId });
  config.grpc = { host: "127.0.0.1", port: 0 };
  await saveConfig(config);
  const op = await identity.operatorCreds("admin");
  await mkdir(join(dir, "operator"));
  await writeFile(join(dir, "operator", "svid.pem"), op.certPem);
  await writeFile(join(dir, "operator", "svid.key"), op.keyPem);
  await writeFile(join(dir, "operator", "bundle.pem"), op.caPem);
  if (grpcPort !== undefined) {
    const addr = { host: "127.0.0.1", port: grpcPort };
    await writeRunInfo(dir, {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      management: addr,
      trust: addr,
      grpc: addr,
    });
  }
  return dir;
}

beforeAll(async () => {
  identity = await TestIdentity.create();
  core = new RecordingCore();
  server = await startGrpcServer({
    core,
    identity,
    listen: { host: "127.0.0.1", port: 0 },
    info: { vendor: "t", product: "t", version: "0", margoVersion: "1.0.0-rc.3", features: [] },
  });
  dataDir = await dataDirFor("wfm-1", server.port);
});

afterAll(async () => {
  await server?.close();
});

describe("margo-wfm over the admin service", () => {
  it("lists and removes clients, as a table and as JSON", async () => {
    await core.addClient("dev-a");
    await core.addClient("dev-b");
    const text = await cli("client", "list");
    expect(text.code).toBe(EXIT.ok);
    expect(text.out).toMatch(/^CLIENT/);
    expect(text.out).toContain("dev-b");
    expect(await cli("client", "remove", "dev-b")).toMatchObject({ code: EXIT.ok });
    const json = await cli("client", "list", "--json");
    expect(JSON.parse(json.out).clients.map((c: { clientId: string }) => c.clientId)).toEqual([
      "dev-a",
    ]);
  });

  it("deploys with typed --param values and updates and undeploys by id", async () => {
    const created = await cli(
      "deploy",
      "app-1",
      "--client",
      "dev-a",
      "--device",
      "d1",
      "--param",
      "port=8080",
      "--param",
      "name=hello",
      "--profile-type",
      "compose",
      "--json",
    );
    expect(created.code).toBe(EXIT.ok);
    const d = JSON.parse(created.out).deployment;
    expect(d.clientId).toBe("dev-a");
    expect(d.manifestVersion).toBe("18446744073709551614"); // uint64 as a string, not rounded
    expect(core.lastCreate?.parameters).toEqual({ port: 8080, name: "hello" });
    expect(core.lastCreate?.profileType).toBe("compose");
    const updated = await cli("update", d.deploymentId, "--param", "debug=true");
    expect(updated.code).toBe(EXIT.ok);
    expect(core.lastUpdate).toEqual({ debug: true });
    expect(BigInt(updated.out.match(/manifestVersion:\s+(\d+)/)?.[1] ?? "0")).toBeGreaterThan(
      BigInt(d.manifestVersion),
    );
    expect((await cli("undeploy", d.deploymentId)).code).toBe(EXIT.ok);
    expect(core.deployments.has(d.deploymentId)).toBe(false);
  });

  it("exits 1 with the problem the WFM sent when it refuses", async () => {
    const r = await cli("deploy", "app-1", "--client", "nobody", "--device", "d1");
    expect(r.code).toBe(EXIT.wfmFailure);
    expect(r.err).toMatch(/the WFM refused the request: Not Found: no such client/);
    const again = await cli("undeploy", "00000000-0000-4000-8000-999999999999");
    expect(again.code).toBe(EXIT.wfmFailure);
    expect(again.err).toContain("no deployment 00000000-0000-4000-8000-999999999999");
  });

  it("refuses a server whose SVID is not the configured WFM's SPIFFE ID (exit 3)", async () => {
    const dir = await dataDirFor("another-wfm", server.port);
    const io = capture();
    const code = await runCli(["client", "list", "--data-dir", dir], io, {});
    expect(code).toBe(EXIT.unavailable);
    expect(io.stderr.join("\n")).toContain("spiffe://example.org/margo/wfm/another-wfm");
  });

  it("names the fix when the WFM is not running (exit 3)", async () => {
    const notStarted = await dataDirFor("wfm-1", undefined);
    const io = capture();
    expect(await runCli(["client", "list", "--data-dir", notStarted], io, {})).toBe(
      EXIT.unavailable,
    );
    expect(io.stderr.join("\n")).toContain(`margo-wfm serve --data-dir ${notStarted}`);

    const closed = await startGrpcServer({
      core,
      identity,
      listen: { host: "127.0.0.1", port: 0 },
      info: { vendor: "t", product: "t", version: "0", margoVersion: "1.0.0-rc.3", features: [] },
    });
    const gone = await dataDirFor("wfm-1", closed.port);
    await closed.close();
    const io2 = capture();
    expect(await runCli(["client", "list", "--data-dir", gone], io2, {})).toBe(EXIT.unavailable);
    expect(io2.stderr.join("\n")).toMatch(
      new RegExp(`cannot reach the WFM at 127\\.0\\.0\\.1:${closed.port}.*is \`margo-wfm serve`),
    );
  });
});
