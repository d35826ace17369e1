import { webcrypto, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  certificateFingerprint,
  type Issuer,
  importPrivateKeyPem,
  type MintedCertificate,
  mintCertificate,
  pemToDer,
} from "@margo/proto/identity";
import {
  type AuthorityEntry,
  STATE_FILE,
  type StateFile,
  writeAuthorityFiles,
} from "./state-files.js";
import { IdentityError } from "./types.js";

export type CryptoKey = Awaited<ReturnType<typeof importPrivateKeyPem>>;

/** A root CA of the bundle as the running WFM holds it. */
export interface Authority {
  fingerprint: string;
  certDer: Buffer;
  certPem: string;
  subject: string;
  notAfter: Date;
  /** PEM of this root's cross-certificates (only the issuing root has any that matter). */
  crossPem: string[];
  /** Only the issuing authority's key is loaded; the others sign only when they must. */
  privateKey?: CryptoKey;
}

/** A root's in-memory form (without key); subject and expiry are for `ca show`. */
function loadedAuthority(certDer: Buffer, certPem: string, crossPem: string[] = []): Authority {
  const x = new X509Certificate(certDer);
  return {
    fingerprint: certificateFingerprint(certDer),
    certDer,
    certPem,
    subject: x.subject.split("\n").join(", "),
    notAfter: new Date(x.validTo),
    crossPem,
  };
}

/** Persist a freshly created root (not yet committed) and return both of its forms. */
export async function writeRoot(
  dir: string,
  root: MintedCertificate,
): Promise<{ entry: Omit<AuthorityEntry, "role">; loaded: Authority }> {
  const entry = await writeAuthorityFiles(dir, root, certificateFingerprint(root.certDer));
  return { entry, loaded: loadedAuthority(root.certDer, root.certPem) };
}

/** A root's private key from its file, for the rare steps where a non-issuing root signs. */
export async function readRootKey(dir: string, entry: AuthorityEntry): Promise<CryptoKey> {
  return importPrivateKeyPem(await readFile(join(dir, entry.key), "utf8"));
}

/**
 * Every root state.json names, checked against its recorded fingerprint so a swapped or damaged
 * file is refused rather than trusted; only the issuing root's key is read.
 */
export async function readRoots(dir: string, state: StateFile): Promise<Authority[]> {
  const authorities: Authority[] = [];
  for (const a of state.authorities) {
    const certPem = await readFile(join(dir, a.cert), "utf8");
    const certDer = pemToDer(certPem)[0];
    if (!certDer || certificateFingerprint(certDer) !== a.fingerprint)
      throw new IdentityError(
        "identity.corrupt",
        `${a.cert} does not hold anchor ${a.fingerprint}`,
      );
    const crossPem: string[] = [];
    for (const x of a.crossSigned ?? []) crossPem.push(await readFile(join(dir, x.cert), "utf8"));
    const loaded = loadedAuthority(certDer, certPem, crossPem);
    if (a.role === "issuing") loaded.privateKey = await readRootKey(dir, a);
    authorities.push(loaded);
  }
  if (state.authorities.filter((a) => a.role === "issuing").length !== 1)
    throw new IdentityError(
      "identity.corrupt",
      `${dir}/${STATE_FILE} must name exactly one issuing authority`,
    );
  return authorities;
}

/**
 * `root` re-issued by `signer`: same subject, same key, so SVIDs `root` signs also chain to the
 * signer. Valid no longer than either certificate, so it can never outlive the older anchor.
 */
export async function crossSign(
  root: Authority,
  rootKey: CryptoKey,
  signer: Issuer,
): Promise<MintedCertificate> {
  const x = new X509Certificate(root.certDer);
  const spki = x.publicKey.export({ type: "spki", format: "der" });
  const publicKey = await webcrypto.subtle.importKey("spki", spki, rootKey.algorithm, true, [
    "verify",
  ]);
  const signerNotAfter = new Date(new X509Certificate(signer.certDer).validTo);
  return mintCertificate({
    subject: root.subject,
    issuer: signer,
    keys: { publicKey, privateKey: rootKey },
    ca: true,
    keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
    notAfter: root.notAfter < signerNotAfter ? root.notAfter : signerNotAfter,
  });
}
