import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { admin } from "@margo/proto";
import { DataDirError } from "./errors.js";

/**
 * The folder layout of a credential set, the same for the operator (`<dataDir>/operator/`) and
 * for a client (`client add --out DIR`), so a device installer and the CLI read one format:
 * the SVID chain, its key (0600), the trust anchors as PEM and as the SPIFFE bundle document.
 */
export const CREDENTIAL_FILES = {
  certificateChain: "svid.pem",
  privateKey: "svid.key",
  trustBundlePem: "bundle.pem",
  spiffeBundleJson: "bundle.json",
} as const;

export const OPERATOR_DIR = "operator";

/** Writes a credential set; the key is readable by the owner only. */
export async function writeCredentialFiles(
  dir: string,
  creds: admin.ClientCredentials,
): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files: [string, string | Buffer, number][] = [
    [CREDENTIAL_FILES.certificateChain, creds.certificateChainPem, 0o644],
    [CREDENTIAL_FILES.privateKey, creds.privateKeyPem, 0o600],
    [CREDENTIAL_FILES.trustBundlePem, creds.trustBundlePem, 0o644],
    [CREDENTIAL_FILES.spiffeBundleJson, creds.spiffeBundleJson, 0o644],
  ];
  for (const [name, body, mode] of files) await writeFile(join(dir, name), body, { mode });
  return files.map(([name]) => join(dir, name));
}

/** PEM material for an mTLS connection. */
export interface CredentialPem {
  certificateChainPem: string;
  privateKeyPem: string;
  trustBundlePem: string;
}

/** Reads the PEM files of a credential set; a missing file names `init` as the fix. */
export async function readCredentialFiles(dir: string): Promise<CredentialPem> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name), "utf8");
    } catch (e) {
      throw new DataDirError(
        `cannot read ${join(dir, name)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): the operator credentials are written by \`margo-wfm init\`; is --data-dir the folder you initialised?`,
      );
    }
  };
  return {
    certificateChainPem: await read(CREDENTIAL_FILES.certificateChain),
    privateKeyPem: await read(CREDENTIAL_FILES.privateKey),
    trustBundlePem: await read(CREDENTIAL_FILES.trustBundlePem),
  };
}
