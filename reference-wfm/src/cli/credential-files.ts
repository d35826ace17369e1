import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { admin } from "@margo/proto";
import { CREDENTIAL_FILES, writeCredentials } from "@margo/proto/identity";
import { DataDirError } from "./errors.js";

/**
 * Credential folders, in the one layout the identity module defines (svid.pem, svid.key 0600,
 * bundle.pem, bundle.json), so what `client add --out` writes is what a device agent reads, and
 * the CLI's own operator credentials (`<dataDir>/operator/`) use the same format.
 */
export const OPERATOR_DIR = "operator";

/** The four files of a credential set, in the order commands list them. */
export const CREDENTIAL_FILES_LIST = [
  CREDENTIAL_FILES.chain,
  CREDENTIAL_FILES.key,
  CREDENTIAL_FILES.bundlePem,
  CREDENTIAL_FILES.bundleJson,
] as const;

/** Writes a credential set and returns the paths written, for the command's output. */
export async function writeCredentialFiles(
  dir: string,
  creds: admin.ClientCredentials,
): Promise<string[]> {
  await writeCredentials(dir, creds);
  return CREDENTIAL_FILES_LIST.map((name) => join(dir, name));
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
    certificateChainPem: await read(CREDENTIAL_FILES.chain),
    privateKeyPem: await read(CREDENTIAL_FILES.key),
    trustBundlePem: await read(CREDENTIAL_FILES.bundlePem),
  };
}
