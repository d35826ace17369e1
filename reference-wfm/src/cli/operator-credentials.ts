import { X509Certificate } from "node:crypto";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { admin } from "@margo/proto";
import {
  CREDENTIAL_FILES,
  certificateFingerprint,
  pemToDer,
  SvidVerificationError,
  syncDir,
  verifySvid,
  writeCredentials,
} from "@margo/proto/identity";
import { CREDENTIAL_FILES_LIST } from "./credential-files.js";
import { DataDirError } from "./errors.js";

/**
 * The CLI's own operator credentials (`<dataDir>/operator/`) across a CA rotation: they were
 * minted by the root that issued at `init`, so once that root retires the admin service refuses
 * them and the operator is locked out of the very service that could mint new ones. `ca activate`
 * renews them from the new root, `ca retire` checks they survive, `operator renew` renews on demand.
 */

/** Tolerated clock skew, the WFM's own (identity/verify-cache.ts), so both sides judge alike. */
const SKEW_SECONDS = 30;

/** The operator name in the leaf of `<dir>/svid.pem` (spiffe://<td>/operator/<name>). */
export async function operatorNameOf(dir: string): Promise<string> {
  const path = join(dir, CREDENTIAL_FILES.chain);
  let uri: string | undefined;
  try {
    const leaf = new X509Certificate(await readFile(path));
    uri = (leaf.subjectAltName ?? "")
      .split(/,\s*/)
      .find((san) => san.startsWith("URI:"))
      ?.slice(4);
  } catch (e) {
    throw new DataDirError(
      `cannot read the operator SVID ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): it is written by \`margo-wfm init\``,
    );
  }
  const m = uri?.match(/^spiffe:\/\/[^/]+\/operator\/([^/]+)$/);
  if (!m?.[1])
    throw new DataDirError(
      `${path} holds ${uri ?? "no SPIFFE ID"}, not an operator SVID (spiffe://<trust-domain>/operator/<name>)`,
    );
  return m[1];
}

/**
 * Replaces a credential folder as a whole: the new set is written into a sibling folder, which is
 * then swapped in by two renames. Replacing the files one by one could leave a new certificate
 * beside the old key after a crash, which authenticates nobody; here a reader sees the old set or
 * the new one (or, for the instant between the renames, no folder, which it reports and a retry
 * cures). If the second rename fails the old folder is put back.
 */
export async function replaceCredentialDir(
  dir: string,
  creds: admin.ClientCredentials,
): Promise<string[]> {
  const parent = dirname(dir);
  const stamp = `${process.pid}-${Date.now()}`;
  const fresh = join(parent, `.${basename(dir)}.new-${stamp}`);
  const old = join(parent, `.${basename(dir)}.old-${stamp}`);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  try {
    await writeCredentials(fresh, creds);
  } catch (e) {
    await rm(fresh, { recursive: true, force: true });
    throw e;
  }
  let hadOld = true;
  try {
    await rename(dir, old);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      await rm(fresh, { recursive: true, force: true });
      throw e;
    }
    hadOld = false;
  }
  try {
    await rename(fresh, dir);
  } catch (e) {
    if (hadOld) await rename(old, dir).catch(() => undefined);
    await rm(fresh, { recursive: true, force: true });
    throw e;
  }
  await syncDir(parent);
  if (hadOld) await rm(old, { recursive: true, force: true });
  return CREDENTIAL_FILES_LIST.map((name) => join(dir, name));
}

/** Why the operator SVID would be refused once only `remaining` anchors are trusted. */
export interface RetireCheck {
  ok: boolean;
  spiffeId?: string;
  reason?: string;
}

/**
 * Would the operator SVID in `dir` still verify with only the anchors that survive a retire (the
 * issuing root and any published one)? The anchors' certificates come from the folder's own
 * bundle.pem, which holds every anchor that existed when the SVID was minted, its issuer
 * included; an issuer missing there counts as retiring, so the check errs on refusing.
 */
export async function checkSurvivesRetire(
  dir: string,
  status: admin.AuthorityStatus,
  trustDomain: string,
  now: Date = new Date(),
): Promise<RetireCheck> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name), "utf8");
    } catch (e) {
      throw new DataDirError(
        `cannot read ${join(dir, name)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): it is written by \`margo-wfm init\``,
      );
    }
  };
  const chain = pemToDer(await read(CREDENTIAL_FILES.chain));
  const remaining = new Set(
    status.anchors
      .filter(
        (a) =>
          a.role === admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING ||
          a.role === admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_NEXT,
      )
      .map((a) => a.fingerprint),
  );
  const anchors = pemToDer(await read(CREDENTIAL_FILES.bundlePem)).filter((d) =>
    remaining.has(certificateFingerprint(d)),
  );
  if (anchors.length === 0)
    return { ok: false, reason: "none of the roots that stay in the bundle issued it" };
  try {
    const v = verifySvid(chain, anchors, { trustDomain, now, skewSeconds: SKEW_SECONDS });
    return { ok: true, spiffeId: v.spiffeId };
  } catch (e) {
    if (e instanceof SvidVerificationError) return { ok: false, reason: e.message };
    throw e;
  }
}
