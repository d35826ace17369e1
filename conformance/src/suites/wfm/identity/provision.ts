/**
 * Admitted WFM clients for the harness's devices: either provisioned per run by the vendor's
 * command (fresh ids `conf-<random>-a`, `-b`, so runs never share a scope) or read from
 * pre-provisioned credential folders.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { CREDENTIAL_FILES, parseSpiffeId, pemToDer, readCertificate } from "@margo/proto/identity";
import type { WfmSuiteConfig } from "../../../config/types.js";
import type { Credentials } from "../context.js";
import { shellQuote } from "../drivers/shell-driver.js";

/** A provisioning or retire command failed. */
export class ProvisioningError extends Error {
  override readonly name = "ProvisioningError";
}

export interface ProvisionedClient {
  clientId: string;
  credentials: Credentials;
  dir: string;
  /** True when the harness created it in this run (its manifest history starts now). */
  fresh: boolean;
}

/** Run a configured command template with {name} substitution; rejects on non-zero exit. */
export function runTemplate(
  template: string,
  values: Record<string, string>,
  log?: (line: string) => void,
): Promise<string> {
  const command = template.replace(/\{([A-Za-z]+)\}/g, (whole, n: string) =>
    n in values ? shellQuote(values[n] ?? "") : whole,
  );
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) return resolve(out);
      log?.(`command failed (exit ${code}): ${command}`);
      reject(new ProvisioningError(`${command} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

async function readDir(dir: string): Promise<Credentials> {
  const [chainPem, keyPem] = await Promise.all([
    readFile(join(dir, CREDENTIAL_FILES.chain), "utf8"),
    readFile(join(dir, CREDENTIAL_FILES.key), "utf8"),
  ]);
  return { chainPem, keyPem };
}

/** The client id is the last segment of `.../margo/wfm/<wfm>/client/<id>` in the leaf's URI SAN. */
export function clientIdOf(chainPem: string): string {
  const leaf = pemToDer(chainPem)[0];
  if (!leaf) throw new ProvisioningError("credential folder has no certificate");
  const uri = readCertificate(leaf).uris[0];
  if (!uri) throw new ProvisioningError("client SVID has no URI SAN");
  const segs = parseSpiffeId(uri).segments;
  return segs[segs.length - 1] ?? "";
}

/** Admit one client through the provision command and read the credentials it wrote. */
export async function admitOne(
  provisionCommand: string,
  clientId: string,
  workDir: string,
  log: (line: string) => void,
): Promise<ProvisionedClient> {
  const dir = join(workDir, "clients", clientId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await runTemplate(provisionCommand, { clientId, dir }, log);
  return { clientId, credentials: await readDir(dir), dir, fresh: true };
}

/**
 * wfm.clients cannot give the two clients the suite needs. A configuration mistake: as
 * SuiteUnavailable it turned every WFM check into a skip and the run read "conformant".
 */
export class WfmClientsConfigError extends Error {
  override readonly name = "WfmClientsConfigError";
}

/** Provision (or read) at least two clients. */
export async function provisionClients(
  cfg: WfmSuiteConfig["clients"],
  workDir: string,
  log: (line: string) => void,
): Promise<ProvisionedClient[]> {
  if (cfg.provisionCommand) {
    const run = randomBytes(4).toString("hex");
    const command = cfg.provisionCommand;
    return Promise.all(
      [`conf-${run}-a`, `conf-${run}-b`].map((id) => admitOne(command, id, workDir, log)),
    );
  }
  const dirs = cfg.dirs ?? [];
  if (dirs.length < 2)
    throw new WfmClientsConfigError(
      "wfm.clients needs provisionCommand or at least two credential folders in dirs",
    );
  return Promise.all(
    dirs.map(async (dir) => {
      const credentials = await readDir(dir);
      return { clientId: clientIdOf(credentials.chainPem), credentials, dir, fresh: false };
    }),
  );
}
