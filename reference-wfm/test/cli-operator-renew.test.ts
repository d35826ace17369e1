import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../src/cli/errors.js";
import { runCli } from "../src/cli/main.js";
import type { CliIo } from "../src/cli/output.js";
import { jsonOf, MtlsClient } from "./support/mtls-client.js";

/**
 * The operator is not locked out by its own CA rotation: `init` mints the CLI's operator SVID
 * from the first root, and after publish, activate and retire that root is gone. `serve` is the
 * real bin shim in a child process; the other commands run in this process through runCli, over
 * the real admin gRPC edge with the files in <data-dir>/operator/.
 */

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "../bin/margo-wfm");

let root: string;
let dataDir: string;
let server: ChildProcess | undefined;
let ports: { management: number; trust: number; grpc: number };

async function cli(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = { out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
  const code = await runCli([...argv, "--data-dir", dataDir], io, {});
  return { code, out: stdout.join("\n"), err: stderr.join("\n") };
}

/** SHA-256 fingerprint (hex) of the root that signed the operator SVID's leaf, from a status. */
async function operatorIssuer(anchorsPem: string[]): Promise<number> {
  const leaf = new X509Certificate(await readFile(join(dataDir, "operator", "svid.pem")));
  return anchorsPem.findIndex((pem) => leaf.checkIssued(new X509Certificate(pem)));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "margo-cli-operator-"));
  dataDir = join(root, "wfm");
  const init = await cli(
    "init",
    "--trust-domain",
    "renew.example",
    "--wfm-id",
    "wfm-renew",
    "--management-port",
    "0",
    "--trust-port",
    "0",
    "--grpc-port",
    "0",
  );
  expect(init.err).toBe("");
  expect(init.code).toBe(EXIT.ok);
  const serve = spawn(BIN, ["serve", "--data-dir", dataDir, "--json", "--keep-alive", "30"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  server = serve;
  const first = await new Promise<string>((ok, fail) => {
    createInterface({ input: serve.stdout }).once("line", ok);
    serve.once("exit", (c) => fail(new Error(`serve exited ${c}`)));
  });
  const listening = JSON.parse(first);
  ports = {
    management: listening.management.port,
    trust: listening.trust.port,
    grpc: listening.grpc.port,
  };
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((ok) => server?.once("exit", ok));
    server.kill("SIGTERM");
    await exited;
  }
  await rm(root, { recursive: true, force: true });
});

describe("margo-wfm operator credentials across a CA rotation", () => {
  it("digest 5.6: init, serve, publish, activate --force, retire; client list still works", async () => {
    const before = await readFile(join(dataDir, "operator", "svid.pem"), "utf8");
    expect((await cli("ca", "publish")).code).toBe(EXIT.ok);
    const activated = await cli("ca", "activate", "--force");
    expect(activated.err).toBe("");
    expect(activated.code).toBe(EXIT.ok);
    expect(activated.out).toContain("operator credentials renewed from the new root");
    const after = await readFile(join(dataDir, "operator", "svid.pem"), "utf8");
    expect(after).not.toBe(before);
    // The renewed SVID comes from the new issuing root, and bundle.pem now holds both anchors.
    const bundle = await readFile(join(dataDir, "operator", "bundle.pem"), "utf8");
    const anchors = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    expect(anchors).toHaveLength(2);
    const status = JSON.parse((await cli("ca", "show", "--json")).out);
    const issuingFp = status.anchors[0].fingerprint as string;
    const issuerIndex = await operatorIssuer(anchors ?? []);
    expect(issuerIndex).toBeGreaterThanOrEqual(0);
    const issuerFp = new X509Certificate(anchors?.[issuerIndex] ?? "").fingerprint256
      .replaceAll(":", "")
      .toLowerCase();
    expect(issuerFp).toBe(issuingFp);
    const bundleJson = JSON.parse(await readFile(join(dataDir, "operator", "bundle.json"), "utf8"));
    expect(bundleJson.keys).toHaveLength(2);
    // Swapped in whole: no temporary folders are left beside operator/.
    expect((await readdir(dataDir)).filter((n) => n.includes("operator"))).toEqual(["operator"]);

    const retired = await cli("ca", "retire", "--json");
    expect(retired.err).toBe("");
    expect(retired.code).toBe(EXIT.ok);
    expect(JSON.parse(retired.out).anchorFingerprints).toEqual([issuingFp]);

    const listed = await cli("client", "list");
    expect(listed.err).toBe("");
    expect(listed.code).toBe(EXIT.ok);
  });

  it("retire is refused (exit 1, naming operator renew) while the operator SVID is from the old root", async () => {
    const saved = join(root, "operator-old");
    await cp(join(dataDir, "operator"), saved, { recursive: true });
    expect((await cli("ca", "publish")).code).toBe(EXIT.ok);
    expect((await cli("ca", "activate", "--force")).code).toBe(EXIT.ok);
    // Put back the credentials the previous root issued, as if the renewal had not happened.
    await rm(join(dataDir, "operator"), { recursive: true });
    await cp(saved, join(dataDir, "operator"), { recursive: true });
    const sequence = JSON.parse((await cli("ca", "show", "--json")).out).spiffeSequence;

    const refused = await cli("ca", "retire");
    expect(refused.code).toBe(EXIT.wfmFailure);
    expect(refused.err).toContain("margo-wfm operator renew");
    // Nothing was retired.
    const still = JSON.parse((await cli("ca", "show", "--json")).out);
    expect(still.spiffeSequence).toBe(sequence);
    expect(still.anchors).toHaveLength(2);

    const renewed = await cli("operator", "renew", "--json");
    expect(renewed.err).toBe("");
    expect(renewed.code).toBe(EXIT.ok);
    expect(JSON.parse(renewed.out).spiffeId).toBe("spiffe://renew.example/operator/admin");

    expect((await cli("ca", "retire")).code).toBe(EXIT.ok);
    expect((await cli("client", "list")).code).toBe(EXIT.ok);
  });

  it("serve --keep-alive overrides wfm.json; discovery names the live trust port (init with --trust-port 0)", async () => {
    const creds = join(root, "edge-1");
    expect((await cli("client", "add", "edge-1", "--out", creds)).code).toBe(EXIT.ok);
    const read = (n: string) => readFile(join(creds, n), "utf8");
    const trustBundlePem = await read("bundle.pem");
    const device = new MtlsClient({
      port: ports.management,
      trustBundlePem,
      expectedServerId: "spiffe://renew.example/margo/wfm/wfm-renew",
      client: {
        certificateChainPem: await read("svid.pem"),
        privateKeyPem: await read("svid.key"),
      },
      keepAlive: true,
    });
    try {
      const res = await device.get("/api/v1/deployments");
      expect(res.status).toBe(200);
      expect(res.headers["keep-alive"]).toBe("timeout=30");
    } finally {
      device.close();
    }
    const mis = new MtlsClient({
      port: ports.trust,
      trustBundlePem,
      expectedServerId: "spiffe://renew.example/margo/wfm/wfm-renew",
    });
    try {
      const discovery = await mis.get("/.well-known/margo");
      expect(discovery.status).toBe(200);
      expect(jsonOf(discovery).trustBundleUri).toBe(
        `https://localhost:${ports.trust}/.well-known/spiffe/bundle.json`,
      );
    } finally {
      mis.close();
    }
  });
});
