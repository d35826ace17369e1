import { createRootCa } from "@margo/proto/identity";
import type { WfmConfig } from "../config.js";
import { WfmError } from "../core/errors.js";
import { type Authority, crossSign, readRootKey, writeRoot } from "./roots.js";
import {
  type AuthorityEntry,
  crossCertFile,
  STATE_FORMAT,
  type StateFile,
  writeCrossCertFile,
  writeWfmSvidFiles,
} from "./state-files.js";
import { mintWfmSvid, svidOf, type WfmSvid } from "./wfm-svid.js";

/**
 * The three CA rotation steps of digest 5.6, one operator command each. Each step writes its new
 * files and returns the state to commit; nothing is live until the caller commits state.json, so
 * a step that fails half way changes nothing a restart would see.
 */

/** The committed authority: state.json and the roots it names, index for index. */
export interface AuthorityView {
  state: StateFile;
  authorities: Authority[];
}

/** A step's outcome; `svid` is set when the step re-minted the WFM SVID. */
export interface RotationStep extends AuthorityView {
  svid?: WfmSvid;
}

/**
 * Step 1 (digest 5.6 "publish both"): a new root joins the bundle as `next`, spiffe_sequence + 1.
 * Issuance and the WFM SVID stay on the current root, so a device holding only the old bundle
 * notices nothing, and can fetch the new bundle over a connection it still trusts. One rotation
 * at a time: refused while a published root waits for activation.
 */
export async function publishNext(
  dir: string,
  trustDomain: string,
  { state, authorities }: AuthorityView,
): Promise<RotationStep> {
  const pending = state.authorities.find((e) => e.role === "next");
  if (pending)
    throw new WfmError(
      "conflict",
      `root ${pending.fingerprint.slice(0, 16)} was published at ${pending.publishedAt} and is not active yet: activate it (margo-wfm ca activate) before publishing another`,
    );
  const seq = BigInt(state.spiffeSequence) + 1n;
  const root = await createRootCa({ trustDomain, commonName: `Margo root CA ${seq}` });
  const written = await writeRoot(dir, root);
  return {
    state: {
      ...state,
      format: STATE_FORMAT,
      spiffeSequence: seq.toString(),
      authorities: [
        ...state.authorities,
        { ...written.entry, role: "next", publishedAt: new Date().toISOString() },
      ],
    },
    authorities: [...authorities, written.loaded],
  };
}

/**
 * Step 2 ("switch issuance"): the published root issues from now on and the WFM SVID is re-minted
 * from it. Devices had `bundleRefreshHintSeconds` to fetch the bundle naming it, so an earlier
 * activation needs `force`. The new root is cross-signed by every older anchor still in the
 * bundle and sent after the WFM SVID, so a device that missed the refresh is cut off only when its
 * anchor retires. The bundle itself does not change (same anchors, same sequence).
 */
export async function activateNext(
  dir: string,
  config: WfmConfig,
  { state, authorities }: AuthorityView,
  force: boolean,
): Promise<RotationStep> {
  const ni = state.authorities.findIndex((e) => e.role === "next");
  const next = state.authorities[ni];
  const nextLoaded = authorities[ni];
  if (!next || !nextLoaded)
    throw new WfmError(
      "conflict",
      "no published root is waiting for activation: publish one first (margo-wfm ca publish)",
    );
  const hint = config.bundleRefreshHintSeconds;
  const allowedAt = next.publishedAt ? Date.parse(next.publishedAt) + hint * 1000 : 0;
  const wait = Math.ceil((allowedAt - Date.now()) / 1000);
  if (!force && wait > 0)
    throw new WfmError(
      "conflict",
      `root ${next.fingerprint.slice(0, 16)} was published at ${next.publishedAt}; devices refresh the trust bundle every ${hint} s, so activation is allowed from ${new Date(allowedAt).toISOString()} (in ${wait} s), or now with force (devices that have not refreshed then cannot verify SVIDs the new root issues them)`,
    );
  const privateKey = await readRootKey(dir, next);
  const issuer = { certDer: nextLoaded.certDer, privateKey };
  const crossSigned: { by: string; cert: string }[] = [];
  const crossPem: string[] = [];
  for (const [i, e] of state.authorities.entries()) {
    const signer = authorities[i];
    if (i === ni || !signer) continue;
    const key = signer.privateKey ?? (await readRootKey(dir, e));
    const cross = await crossSign(nextLoaded, privateKey, {
      certDer: signer.certDer,
      privateKey: key,
    });
    const file = crossCertFile(next.fingerprint, e.fingerprint);
    await writeCrossCertFile(dir, file, cross.certPem);
    crossSigned.push({ by: e.fingerprint, cert: file });
    crossPem.push(cross.certPem);
  }
  const svid = await mintWfmSvid(config, issuer);
  const svidFiles = await writeWfmSvidFiles(dir, svid);
  return {
    state: {
      ...state,
      format: STATE_FORMAT,
      authorities: state.authorities.map((e, i): AuthorityEntry => {
        if (i === ni) return { ...e, role: "issuing", crossSigned };
        const { crossSigned: _, ...rest } = e;
        return e.role === "issuing" ? { ...rest, role: "previous" } : e;
      }),
      wfmSvid: svidFiles,
    },
    // Only the issuing root keeps its key in memory; the others sign only when they must.
    authorities: authorities.map(({ privateKey: _, ...a }, i) =>
      i === ni ? { ...a, crossPem, privateKey } : { ...a, crossPem: [] },
    ),
    svid: svidOf(svid),
  };
}

/**
 * Step 3 ("retire old"): every `previous` anchor leaves the bundle (spiffe_sequence + 1), with
 * the cross-certificates it signed. The issuing root and a published `next` one stay, so retiring
 * can never cut the WFM off from devices that followed the rotation. Nothing to retire gives
 * undefined: no change at all, not even a new sequence.
 */
export function retirePrevious({ state, authorities }: AuthorityView): RotationStep | undefined {
  const keep = state.authorities
    .map((e, i) => ({ e, a: authorities[i] }))
    .filter(({ e }) => e.role !== "previous");
  if (keep.length >= authorities.length) return undefined;
  return {
    state: {
      ...state,
      format: STATE_FORMAT,
      spiffeSequence: (BigInt(state.spiffeSequence) + 1n).toString(),
      // Every cross-certificate was signed by an anchor that is `previous` by now.
      authorities: keep.map(({ e }) => {
        const { crossSigned: _, ...rest } = e;
        return rest;
      }),
    },
    authorities: keep.flatMap(({ a }) => (a ? [{ ...a, crossPem: [] }] : [])),
  };
}
