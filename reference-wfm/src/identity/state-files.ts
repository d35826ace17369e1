import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type MintedCertificate,
  syncDir,
  wfmSpiffeId,
  writeFileAtomic,
} from "@margo/proto/identity";
import type { WfmConfig } from "../config.js";
import { IdentityError } from "./types.js";

/**
 * The WFM's trust domain authority, kept as files under `<dataDir>/identity/` (0700):
 *
 * - `state.json`           which anchors are in the bundle (in publication order, each with its
 *                          role in a rotation), spiffe_sequence and which files hold the WFM SVID;
 *                          the single commit point of every change
 * - `ca-<fp16>.pem/.key`   one root CA per anchor (P-256), named by its SHA-256 fingerprint
 * - `xs-<fp16>-by-<fp16>.pem`  the issuing root cross-signed by an older anchor still in the bundle
 * - `wfm-svid-<serial>.pem/.key`  the WFM's own SVID (leaf only; roots are in the bundle)
 *
 * Every file is 0600 and written atomically. A change writes its new files first under fresh
 * names and then replaces state.json, so a crash at any point leaves the previous consistent
 * state (plus unreferenced files that the next change removes).
 */

const IDENTITY_DIR = "identity";
/** The commit point: its presence also marks a folder that already holds a trust domain. */
export const STATE_FILE = "state.json";
/** Format 1 listed the issuing anchor first and knew no roles; it is still read. */
export const STATE_FORMAT = 2;

/** What an anchor is for during a rotation (digest 5.6). */
export type AnchorRole = "issuing" | "next" | "previous";

/** One anchor as state.json records it. */
export interface AuthorityEntry {
  fingerprint: string;
  cert: string;
  key: string;
  role: AnchorRole;
  /** ISO time it joined the bundle; absent for anchors from format 1. */
  publishedAt?: string;
  /**
   * This root cross-signed by older anchors of the bundle (files), sent after the WFM SVID so a
   * device that still holds only an older anchor keeps verifying the WFM until that one retires.
   */
  crossSigned?: { by: string; cert: string }[];
}

/** The content of state.json: everything else in the folder is reached through it. */
export interface StateFile {
  format: number;
  trustDomain: string;
  wfmId: string;
  /** Decimal uint64 (JSON numbers would lose precision beyond 2^53). */
  spiffeSequence: string;
  /** In publication order (the bundle's order, so activation leaves its bytes alone). */
  authorities: AuthorityEntry[];
  wfmSvid: { cert: string; key: string };
}

/** The identity folder of a data directory; one place so init, load and the CLI agree on it. */
export function identityDir(config: WfmConfig): string {
  return join(config.dataDir, IDENTITY_DIR);
}

/** Whether `dir` already holds a trust domain, so init never overwrites one. */
export async function hasState(dir: string): Promise<boolean> {
  try {
    await stat(join(dir, STATE_FILE));
    return true;
  } catch {
    return false;
  }
}

/** Replace state.json atomically: the one write that commits a change. */
export async function writeState(dir: string, state: StateFile): Promise<void> {
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/**
 * Read state.json as the current format, refusing an unknown format or a folder that belongs to
 * another trust domain or wfm-id (a mismatch means the wrong data directory).
 */
export async function readState(dir: string, config: WfmConfig): Promise<StateFile> {
  let state: StateFile;
  try {
    state = JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as StateFile;
  } catch (e) {
    throw new IdentityError(
      "identity.missing",
      `no trust domain in ${dir} (run margo-wfm init first): ${e instanceof Error ? e.message : e}`,
    );
  }
  if (state.format === 1) state = fromFormat1(state);
  if (state.format !== STATE_FORMAT)
    throw new IdentityError(
      "identity.format",
      `${dir}/${STATE_FILE} has unknown format ${state.format}`,
    );
  if (state.trustDomain !== config.trustDomain || state.wfmId !== config.wfmId)
    throw new IdentityError(
      "identity.config-mismatch",
      `${dir} belongs to ${wfmSpiffeId(state.trustDomain, state.wfmId)}, not to ${wfmSpiffeId(config.trustDomain, config.wfmId)}`,
    );
  return state;
}

/**
 * Format 1 listed the issuing anchor first and older ones after it, without roles. Read as
 * publication order (oldest first) with the first one issuing; written as format 2 on the next
 * change.
 */
function fromFormat1(state: StateFile): StateFile {
  const [issuing, ...older] = state.authorities;
  if (!issuing) return state;
  return {
    ...state,
    format: STATE_FORMAT,
    authorities: [
      ...older.reverse().map((a): AuthorityEntry => ({ ...a, role: "previous" })),
      { ...issuing, role: "issuing" },
    ],
  };
}

/** Write a new root's files under names no committed state uses yet (the name is its hash). */
export async function writeAuthorityFiles(
  dir: string,
  root: MintedCertificate,
  fingerprint: string,
): Promise<Omit<AuthorityEntry, "role">> {
  const base = `ca-${fingerprint.slice(0, 16)}`;
  const entry = { fingerprint, cert: `${base}.pem`, key: `${base}.key` };
  await writeFileAtomic(join(dir, entry.key), root.keyPem, 0o600);
  await writeFileAtomic(join(dir, entry.cert), root.certPem, 0o600);
  return entry;
}

/** Write a WFM SVID under its serial, so the committed one is never overwritten in place. */
export async function writeWfmSvidFiles(
  dir: string,
  svid: MintedCertificate,
): Promise<StateFile["wfmSvid"]> {
  const base = `wfm-svid-${svid.serialNumber.slice(0, 16)}`;
  const files = { cert: `${base}.pem`, key: `${base}.key` };
  await writeFileAtomic(join(dir, files.key), svid.keyPem, 0o600);
  await writeFileAtomic(join(dir, files.cert), svid.certPem, 0o600);
  return files;
}

/** A cross-certificate's file name: which root, signed by which anchor. */
export function crossCertFile(root: string, by: string): string {
  return `xs-${root.slice(0, 16)}-by-${by.slice(0, 16)}.pem`;
}

/** Write a cross-certificate before the state that names it is committed. */
export async function writeCrossCertFile(dir: string, file: string, pem: string): Promise<void> {
  await writeFileAtomic(join(dir, file), pem, 0o600);
}

const OWNED_FILE =
  /^(ca-[0-9a-f]{16}|wfm-svid-[0-9a-f]{16})\.(pem|key)$|^xs-[0-9a-f]{16}-by-[0-9a-f]{16}\.pem$|\.tmp$/;

/** Delete files a committed state no longer names (and temp files of interrupted writes). */
export async function removeUnreferenced(dir: string, state: StateFile): Promise<void> {
  const keep = new Set([
    STATE_FILE,
    state.wfmSvid.cert,
    state.wfmSvid.key,
    ...state.authorities.flatMap((a) => [
      a.cert,
      a.key,
      ...(a.crossSigned ?? []).map((x) => x.cert),
    ]),
  ]);
  let removed = false;
  for (const f of await readdir(dir)) {
    if (keep.has(f) || !OWNED_FILE.test(f)) continue;
    await rm(join(dir, f), { force: true });
    removed = true;
  }
  if (removed) await syncDir(dir);
}
