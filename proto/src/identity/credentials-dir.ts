import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClientCredentials } from "../gen/margo/admin/v1/wfm_admin.js";
import { writeFileAtomic } from "./atomic-file.js";

/**
 * The folder an operator installs on a device (digest 5.7: SVID, key, initial trust), written by
 * `margo-wfm clients add --out <dir>` and read by the device agent and the conformance suite:
 *
 * - `svid.pem`    the SVID chain, leaf first, then intermediates (item 12)
 * - `svid.key`    the SVID's PKCS#8 private key, mode 0600
 * - `bundle.pem`  every trust anchor, concatenated PEM (for TLS libraries)
 * - `bundle.json` the same anchors as a SPIFFE bundle document (spiffe_sequence, refresh hint)
 *
 * The folder itself is created 0700. Each file is replaced atomically (never torn); the set is not
 * one transaction, so a writer interrupted halfway is simply run again.
 */
export const CREDENTIAL_FILES = {
  chain: "svid.pem",
  key: "svid.key",
  bundlePem: "bundle.pem",
  bundleJson: "bundle.json",
} as const;

/** Write `creds` into `dir` using the layout above. */
export async function writeCredentials(dir: string, creds: ClientCredentials): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, CREDENTIAL_FILES.key), creds.privateKeyPem, 0o600);
  await writeFileAtomic(join(dir, CREDENTIAL_FILES.chain), creds.certificateChainPem, 0o644);
  await writeFileAtomic(join(dir, CREDENTIAL_FILES.bundlePem), creds.trustBundlePem, 0o644);
  await writeFileAtomic(join(dir, CREDENTIAL_FILES.bundleJson), creds.spiffeBundleJson, 0o644);
}

/** What `readCredentials` returns: the PEM texts and bundle bytes, unparsed. */
export interface CredentialFiles {
  chainPem: string;
  keyPem: string;
  bundlePem: string;
  bundleJson: Buffer;
}

/** Read a folder written by `writeCredentials`. */
export async function readCredentials(dir: string): Promise<CredentialFiles> {
  const [chainPem, keyPem, bundlePem, bundleJson] = await Promise.all([
    readFile(join(dir, CREDENTIAL_FILES.chain), "utf8"),
    readFile(join(dir, CREDENTIAL_FILES.key), "utf8"),
    readFile(join(dir, CREDENTIAL_FILES.bundlePem), "utf8"),
    readFile(join(dir, CREDENTIAL_FILES.bundleJson)),
  ]);
  return { chainPem, keyPem, bundlePem, bundleJson };
}
