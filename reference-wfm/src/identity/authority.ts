import { createHash, webcrypto, X509Certificate } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { admin } from "@margo/proto";
import {
  certificateFingerprint,
  createRootCa,
  derToPem,
  encodeAnchorsBundle,
  type Issuer,
  importPrivateKeyPem,
  isValidSegment,
  isValidTrustDomain,
  type MintedCertificate,
  miafName,
  mintCertificate,
  mintSvid,
  operatorSpiffeId,
  pemToDer,
  readCertificate,
  SvidVerificationError,
  syncDir,
  TrustAnchors,
  type VerifiedSvid,
  verifySvid,
  wfmClientSpiffeId,
  wfmSpiffeId,
  writeFileAtomic,
} from "@margo/proto/identity";
import { encodeDiscoveryDocument } from "@margo/proto/wire";
import type { WfmConfig } from "../config.js";
import { WfmError } from "../core/errors.js";
import {
  IdentityError,
  type ServedDocument,
  type TlsMaterial,
  type VerifiedClient,
  type VerifiedOperator,
  type WfmIdentity,
} from "./types.js";

export { writeCredentials } from "@margo/proto/identity";

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
 * CA rotation follows digest 5.6 in three operator steps, each one commit: publish (a `next` root
 * joins the bundle, nothing else changes), activate (it becomes `issuing`, the old one
 * `previous`, the WFM SVID is re-minted), retire (`previous` anchors leave the bundle). A restart
 * between steps resumes from state.json.
 *
 * Every file is 0600 and written atomically. A change writes its new files first under fresh
 * names and then replaces state.json, so a crash at any point leaves the previous consistent
 * state (plus unreferenced files that the next change removes).
 */

const IDENTITY_DIR = "identity";
const STATE_FILE = "state.json";
/** Format 1 listed the issuing anchor first and knew no roles; it is still read. */
const STATE_FORMAT = 2;
/** Validity bounds may be off by this much: devices with rough clocks still connect (digest 5.2). */
const CLOCK_SKEW_SECONDS = 30;
/** Renew the WFM SVID at this fraction of its lifetime. */
const RENEW_AT = 2 / 3;
/** setTimeout's maximum delay; longer waits are split. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const VERIFY_CACHE_MAX = 20_000;

/** What an anchor is for during a rotation (digest 5.6). */
type AnchorRole = "issuing" | "next" | "previous";

interface AuthorityEntry {
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

interface StateFile {
  format: number;
  trustDomain: string;
  wfmId: string;
  /** Decimal uint64 (JSON numbers would lose precision beyond 2^53). */
  spiffeSequence: string;
  /** In publication order (the bundle's order, so activation leaves its bytes alone). */
  authorities: AuthorityEntry[];
  wfmSvid: { cert: string; key: string };
}

interface Authority {
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

type CryptoKey = Awaited<ReturnType<typeof importPrivateKeyPem>>;

interface WfmSvid {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

interface CachedVerification {
  result: VerifiedSvid;
  notBefore: number;
  notAfter: number;
}

function etagOf(body: Buffer): string {
  return `"sha256:${createHash("sha256").update(body).digest("hex")}"`;
}

function identityDir(config: WfmConfig): string {
  return join(config.dataDir, IDENTITY_DIR);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** GET /.well-known/margo: the trust domain and the bundle's URL under `trustPublicUrl`. */
function discoveryFor(trustDomain: string, trustPublicUrl: string): ServedDocument {
  const base = trustPublicUrl.replace(/\/+$/, "");
  const body = Buffer.from(
    encodeDiscoveryDocument({
      trustDomain,
      trustBundleUri: `${base}/.well-known/spiffe/bundle.json`,
    }),
  );
  return { body, etag: etagOf(body) };
}

function checkConfig(config: WfmConfig): void {
  if (!isValidTrustDomain(config.trustDomain))
    throw new IdentityError(
      "identity.trust-domain",
      `${JSON.stringify(config.trustDomain)} is not a SPIFFE trust domain name (lowercase letters, digits, . - _)`,
    );
  if (!isValidSegment(config.wfmId))
    throw new IdentityError(
      "identity.wfm-id",
      `wfm-id ${JSON.stringify(config.wfmId)} must be non-empty RFC 3986 unreserved text, not . or .. (item 16)`,
    );
}

function checkSegment(kind: string, value: string): void {
  if (!isValidSegment(value))
    throw new IdentityError(
      `identity.${kind}`,
      `${kind} ${JSON.stringify(value)} must be non-empty RFC 3986 unreserved text, not . or .. (item 16)`,
    );
}

/**
 * The file-backed WfmIdentity. Mutations (rotation, retirement, renewal) run one at a time; reads
 * (serverTls, verify*, documents) see the last committed state and never wait.
 */
export class FileIdentity implements WfmIdentity {
  readonly trustDomain: string;
  readonly wfmId: string;
  readonly wfmSpiffeId: string;
  private readonly dir: string;
  private state: StateFile;
  private authorities: Authority[];
  private anchors: TrustAnchors;
  private wfmSvid: WfmSvid;
  private bundleDoc: ServedDocument;
  private discoveryDoc: ServedDocument;
  private readonly listeners = new Set<() => void>();
  private verifyCache = new Map<string, CachedVerification>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** Use initIdentity / loadIdentity. */
  constructor(
    private readonly config: WfmConfig,
    state: StateFile,
    authorities: Authority[],
    wfmSvid: WfmSvid,
  ) {
    this.trustDomain = config.trustDomain;
    this.wfmId = config.wfmId;
    this.wfmSpiffeId = wfmSpiffeId(config.trustDomain, config.wfmId);
    this.dir = identityDir(config);
    this.state = state;
    this.authorities = authorities;
    this.anchors = new TrustAnchors(authorities.map((a) => a.certDer));
    this.wfmSvid = wfmSvid;
    this.bundleDoc = this.buildBundle();
    this.discoveryDoc = discoveryFor(config.trustDomain, config.trustPublicUrl);
  }

  /**
   * Where devices fetch the bundle, when only a listening trust server knows it (configured port
   * 0: the composition root passes the live port). Discovery is served from the next request on;
   * TLS material is unaffected, so no onChange.
   */
  setTrustPublicUrl(url: string): void {
    this.discoveryDoc = discoveryFor(this.trustDomain, url);
  }

  /** The spiffe_sequence of the served bundle. */
  get spiffeSequence(): bigint {
    return BigInt(this.state.spiffeSequence);
  }

  /** SHA-256 (hex) of every anchor in the bundle: issuing, then next, then previous (newest first). */
  anchorFingerprints(): string[] {
    return this.ranked().map(({ a }) => a.fingerprint);
  }

  /** The anchors with their roles, in the order anchorFingerprints() promises. */
  private ranked(): { a: Authority; e: AuthorityEntry }[] {
    const rank: Record<AnchorRole, number> = { issuing: 0, next: 1, previous: 2 };
    return this.authorities
      .map((a, i) => ({ a, e: this.entry(i), i }))
      .sort((x, y) => rank[x.e.role] - rank[y.e.role] || y.i - x.i)
      .map(({ a, e }) => ({ a, e }));
  }

  private entry(i: number): AuthorityEntry {
    const e = this.state.authorities[i];
    if (!e) throw new Error(`identity state has no authority ${i}`);
    return e;
  }

  private indexOf(role: AnchorRole): number {
    return this.state.authorities.findIndex((e) => e.role === role);
  }

  /** The trust bundle and where a rotation stands (`margo-wfm ca show`). */
  authorityStatus(): admin.AuthorityStatus {
    const hint = this.config.bundleRefreshHintSeconds;
    const next = this.state.authorities.find((e) => e.role === "next");
    const roles: Record<AnchorRole, admin.TrustAnchorRole> = {
      issuing: admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING,
      next: admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_NEXT,
      previous: admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_PREVIOUS,
    };
    const anchors = this.ranked().map(({ a, e }) => ({
      fingerprint: a.fingerprint,
      role: roles[e.role],
      subject: a.subject,
      notAfter: a.notAfter,
      publishedAt: e.publishedAt === undefined ? undefined : new Date(e.publishedAt),
    }));
    return {
      spiffeSequence: this.spiffeSequence,
      anchorFingerprints: anchors.map((a) => a.fingerprint),
      anchors,
      refreshHintSeconds: hint,
      activationAllowedAt: next?.publishedAt
        ? new Date(Date.parse(next.publishedAt) + hint * 1000)
        : undefined,
    };
  }

  /** When the current WFM SVID expires (its renewal is scheduled at 2/3 of its lifetime). */
  get wfmSvidNotAfter(): Date {
    return this.wfmSvid.notAfter;
  }

  serverTls(): TlsMaterial {
    const issuing = this.authorities[this.indexOf("issuing")];
    return {
      // Cross-certificates after the leaf: a device that has not refreshed its bundle since the
      // last activation still finds a path to the older anchor it holds.
      certChainPem: this.wfmSvid.certPem + (issuing?.crossPem.join("") ?? ""),
      keyPem: this.wfmSvid.keyPem,
      anchorsPem: this.authorities.map((a) => a.certPem).join(""),
    };
  }

  /**
   * Verify a chain against the current anchors. Results are cached by the chain's SHA-256 until
   * the anchors change, and only the validity window is re-checked on a hit, so a reconnecting
   * client costs a hash instead of a parse and a signature check.
   */
  private verify(chainDer: readonly Buffer[], now: Date): VerifiedSvid {
    const h = createHash("sha256");
    for (const c of chainDer) h.update(c);
    const key = h.digest("base64");
    const t = now.getTime();
    const skew = CLOCK_SKEW_SECONDS * 1000;
    const hit = this.verifyCache.get(key);
    if (hit) {
      if (hit.notBefore - skew > t)
        throw new IdentityError("svid.not-yet-valid", "the certificate is not yet valid");
      if (hit.notAfter + skew < t)
        throw new IdentityError("svid.expired", "a certificate on the path has expired");
      return hit.result;
    }
    let result: VerifiedSvid;
    try {
      result = verifySvid(chainDer, this.anchors, {
        trustDomain: this.trustDomain,
        now,
        skewSeconds: CLOCK_SKEW_SECONDS,
      });
    } catch (e) {
      if (e instanceof SvidVerificationError) throw new IdentityError(e.rule, e.message);
      throw e;
    }
    if (this.verifyCache.size >= VERIFY_CACHE_MAX) this.verifyCache.clear();
    this.verifyCache.set(key, {
      result,
      notBefore: result.pathNotBefore.getTime(),
      notAfter: result.pathNotAfter.getTime(),
    });
    return result;
  }

  verifyClient(chainDer: readonly Buffer[], now: Date = new Date()): VerifiedClient {
    const v = this.verify(chainDer, now);
    const name = miafName(v.id);
    // Item 6: exactly spiffe://<own td>/margo/wfm/<own wfm-id>/client/<id>, compared exactly.
    if (name?.kind !== "wfm-client")
      throw new IdentityError(
        "identity.not-wfm-client",
        `${v.spiffeId} is not a WFM Client ID (spiffe://${this.trustDomain}/margo/wfm/${this.wfmId}/client/<id>)`,
      );
    if (name.wfmId !== this.wfmId)
      throw new IdentityError(
        "identity.foreign-wfm",
        `${v.spiffeId} is a client of WFM ${name.wfmId}, not of ${this.wfmId}`,
      );
    return { clientId: name.clientId, spiffeId: v.spiffeId, notAfter: v.pathNotAfter };
  }

  verifyOperator(chainDer: readonly Buffer[], now: Date = new Date()): VerifiedOperator {
    const v = this.verify(chainDer, now);
    const [first, name, ...rest] = v.id.segments;
    if (first !== "operator" || name === undefined || rest.length > 0)
      throw new IdentityError(
        "identity.not-operator",
        `${v.spiffeId} is not an operator ID (spiffe://${this.trustDomain}/operator/<name>)`,
      );
    return { name, spiffeId: v.spiffeId, notAfter: v.pathNotAfter };
  }

  discoveryDocument(): ServedDocument {
    return this.discoveryDoc;
  }

  spiffeBundle(): ServedDocument {
    return this.bundleDoc;
  }

  async mintClient(clientId: string, lifetimeSeconds?: number): Promise<admin.ClientCredentials> {
    checkSegment("client-id", clientId);
    return this.mintCredentials(
      wfmClientSpiffeId(this.trustDomain, this.wfmId, clientId),
      lifetimeSeconds || this.config.clientSvidLifetimeSeconds,
    );
  }

  async mintOperator(name: string, lifetimeSeconds?: number): Promise<admin.ClientCredentials> {
    checkSegment("operator-name", name);
    return this.mintCredentials(
      operatorSpiffeId(this.trustDomain, name),
      lifetimeSeconds || this.config.clientSvidLifetimeSeconds,
    );
  }

  private async mintCredentials(
    spiffeId: string,
    lifetimeSeconds: number,
  ): Promise<admin.ClientCredentials> {
    const svid = await mintSvid({ issuer: this.issuer(), spiffeId, lifetimeSeconds });
    return {
      spiffeId,
      certificateChainPem: svid.certPem,
      privateKeyPem: svid.keyPem,
      trustBundlePem: this.serverTls().anchorsPem,
      spiffeBundleJson: this.bundleDoc.body,
      notAfter: svid.notAfter,
    };
  }

  /**
   * Rotation step 1 (digest 5.6 "publish both"): a new root joins the bundle as `next`,
   * spiffe_sequence + 1. Issuance and the WFM SVID stay on the current root, so a device holding
   * only the old bundle notices nothing, and can fetch the new bundle over a connection it
   * still trusts. One rotation at a time: refused while a published root waits for activation.
   */
  publishNextAuthority(): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      const pending = this.state.authorities.find((e) => e.role === "next");
      if (pending)
        throw new WfmError(
          "conflict",
          `root ${pending.fingerprint.slice(0, 16)} was published at ${pending.publishedAt} and is not active yet: activate it (margo-wfm ca activate) before publishing another`,
        );
      const seq = this.spiffeSequence + 1n;
      const root = await createRootCa({
        trustDomain: this.trustDomain,
        commonName: `Margo root CA ${seq}`,
      });
      const written = await writeAuthorityFiles(this.dir, root);
      await this.commit(
        {
          ...this.state,
          format: STATE_FORMAT,
          spiffeSequence: seq.toString(),
          authorities: [
            ...this.state.authorities,
            { ...written.entry, role: "next", publishedAt: new Date().toISOString() },
          ],
        },
        [...this.authorities, written.loaded],
        this.wfmSvid,
      );
      return this.authorityStatus();
    });
  }

  /**
   * Rotation step 2 ("switch issuance"): the published root issues from now on and the WFM SVID is
   * re-minted from it. Devices had `bundleRefreshHintSeconds` to fetch the bundle naming it, so
   * an earlier activation needs `force`. The new root is cross-signed by every older anchor still
   * in the bundle and sent after the WFM SVID, so a device that missed the refresh is cut off only
   * when its anchor retires. The bundle itself does not change (same anchors, same sequence).
   */
  activateNextAuthority(force = false): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      const ni = this.indexOf("next");
      const next = this.state.authorities[ni];
      const nextLoaded = this.authorities[ni];
      if (!next || !nextLoaded)
        throw new WfmError(
          "conflict",
          "no published root is waiting for activation: publish one first (margo-wfm ca publish)",
        );
      const hint = this.config.bundleRefreshHintSeconds;
      const allowedAt = next.publishedAt ? Date.parse(next.publishedAt) + hint * 1000 : 0;
      const wait = Math.ceil((allowedAt - Date.now()) / 1000);
      if (!force && wait > 0)
        throw new WfmError(
          "conflict",
          `root ${next.fingerprint.slice(0, 16)} was published at ${next.publishedAt}; devices refresh the trust bundle every ${hint} s, so activation is allowed from ${new Date(allowedAt).toISOString()} (in ${wait} s), or now with force (devices that have not refreshed then cannot verify SVIDs the new root issues them)`,
        );
      const privateKey = await importPrivateKeyPem(
        await readFile(join(this.dir, next.key), "utf8"),
      );
      const issuer = { certDer: nextLoaded.certDer, privateKey };
      const crossSigned: { by: string; cert: string }[] = [];
      const crossPem: string[] = [];
      for (const [i, e] of this.state.authorities.entries()) {
        const signer = this.authorities[i];
        if (i === ni || !signer) continue;
        const key =
          signer.privateKey ??
          (await importPrivateKeyPem(await readFile(join(this.dir, e.key), "utf8")));
        const cross = await crossSign(nextLoaded, privateKey, {
          certDer: signer.certDer,
          privateKey: key,
        });
        const file = `xs-${next.fingerprint.slice(0, 16)}-by-${e.fingerprint.slice(0, 16)}.pem`;
        await writeFileAtomic(join(this.dir, file), cross.certPem, 0o600);
        crossSigned.push({ by: e.fingerprint, cert: file });
        crossPem.push(cross.certPem);
      }
      const svid = await mintWfmSvid(this.config, issuer);
      const svidFiles = await writeWfmSvidFiles(this.dir, svid);
      await this.commit(
        {
          ...this.state,
          format: STATE_FORMAT,
          authorities: this.state.authorities.map((e, i): AuthorityEntry => {
            if (i === ni) return { ...e, role: "issuing", crossSigned };
            const { crossSigned: _, ...rest } = e;
            return e.role === "issuing" ? { ...rest, role: "previous" } : e;
          }),
          wfmSvid: svidFiles,
        },
        this.authorities.map(({ privateKey: _, ...a }, i) =>
          i === ni ? { ...a, crossPem, privateKey } : { ...a, crossPem: [] },
        ),
        svidOf(svid),
      );
      return this.authorityStatus();
    });
  }

  /**
   * Rotation step 3 ("retire old"): every `previous` anchor leaves the bundle (spiffe_sequence +
   * 1), with the cross-certificates it signed. The issuing root and a published `next` one stay,
   * so retiring can never cut the WFM off from devices that followed the rotation. Nothing to
   * retire is no change at all.
   */
  retirePreviousAuthorities(): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      const keep = this.state.authorities
        .map((e, i) => ({ e, a: this.authorities[i] }))
        .filter(({ e }) => e.role !== "previous");
      if (keep.length < this.authorities.length) {
        await this.commit(
          {
            ...this.state,
            format: STATE_FORMAT,
            spiffeSequence: (this.spiffeSequence + 1n).toString(),
            // Every cross-certificate was signed by an anchor that is `previous` by now.
            authorities: keep.map(({ e }) => {
              const { crossSigned: _, ...rest } = e;
              return rest;
            }),
          },
          keep.flatMap(({ a }) => (a ? [{ ...a, crossPem: [] }] : [])),
          this.wfmSvid,
        );
      }
      return this.authorityStatus();
    });
  }

  /** Re-mint the WFM SVID from the issuing authority now (the renewal timer calls this). */
  renewWfmSvid(): Promise<void> {
    return this.serialized(async () => {
      const svid = await mintWfmSvid(this.config, this.issuer());
      const files = await writeWfmSvidFiles(this.dir, svid);
      await this.commit({ ...this.state, wfmSvid: files }, this.authorities, svidOf(svid));
    });
  }

  onChange(listener: () => void): () => void {
    const wrapped = () => listener();
    this.listeners.add(wrapped);
    return () => this.listeners.delete(wrapped);
  }

  /** Stop the renewal timer; the object stays usable for reads. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Arm the renewal timer at 2/3 of the current WFM SVID's lifetime. */
  scheduleRenewal(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    const { notBefore, notAfter } = this.wfmSvid;
    const due = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT;
    const wait = due - Date.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (Date.now() < due) return this.scheduleRenewal();
        this.renewWfmSvid().then(
          () => this.scheduleRenewal(),
          (e: unknown) => {
            // A failed renewal (disk full?) is retried soon; the current SVID is still valid.
            console.error(`WFM SVID renewal failed, retrying in 60 s: ${e}`);
            if (this.closed) return;
            this.timer = setTimeout(() => this.scheduleRenewal(), 60_000);
            this.timer.unref();
          },
        );
      },
      // At least a second apart, so a clock jump can never turn renewal into a busy loop.
      Math.max(1000, Math.min(wait, MAX_TIMER_MS)),
    );
    this.timer.unref();
  }

  private issuer(): Issuer {
    const a = this.authorities[this.indexOf("issuing")];
    if (!a?.privateKey) throw new Error("identity state has no issuing key");
    return { certDer: a.certDer, privateKey: a.privateKey };
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private buildBundle(): ServedDocument {
    const body = encodeAnchorsBundle(
      this.authorities.map((a) => a.certDer),
      { sequence: this.spiffeSequence, refreshHintSeconds: this.config.bundleRefreshHintSeconds },
    );
    return { body, etag: etagOf(body) };
  }

  /** Make `next` durable (state.json is the commit point), then swap memory and tell listeners. */
  private async commit(next: StateFile, authorities: Authority[], svid: WfmSvid): Promise<void> {
    await writeState(this.dir, next);
    const anchorsChanged =
      authorities.map((a) => a.fingerprint).join() !== this.anchorFingerprints().join();
    this.state = next;
    this.authorities = authorities;
    this.wfmSvid = svid;
    if (anchorsChanged) {
      this.anchors = new TrustAnchors(authorities.map((a) => a.certDer));
      this.verifyCache = new Map();
    }
    this.bundleDoc = this.buildBundle();
    await removeUnreferenced(this.dir, next);
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (e) {
        console.error(`identity onChange listener failed: ${e}`);
      }
    }
    this.scheduleRenewal();
  }
}

/**
 * The WFM SVID: its one URI SAN plus `config.hostnames` as DNS/IP SANs. Back-dated by at most a
 * quarter of its lifetime (60 s at most) for peers with slow clocks, so that short test lifetimes
 * still leave the renewal point in the future.
 */
function mintWfmSvid(config: WfmConfig, issuer: Issuer): Promise<MintedCertificate> {
  const now = Date.now();
  const lifetimeMs = config.wfmSvidLifetimeSeconds * 1000;
  return mintSvid({
    issuer,
    spiffeId: wfmSpiffeId(config.trustDomain, config.wfmId),
    dnsNames: config.hostnames.filter((h) => isIP(h) === 0),
    ipAddresses: config.hostnames.filter((h) => isIP(h) !== 0),
    notBefore: new Date(now - Math.min(60_000, lifetimeMs / 4)),
    notAfter: new Date(now + lifetimeMs),
  });
}

function svidOf(svid: MintedCertificate): WfmSvid {
  return {
    certPem: svid.certPem,
    keyPem: svid.keyPem,
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
  };
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

/**
 * `root` re-issued by `signer`: same subject, same key, so SVIDs `root` signs also chain to the
 * signer. Valid no longer than either certificate, so it can never outlive the older anchor.
 */
async function crossSign(
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

async function writeAuthorityFiles(
  dir: string,
  root: MintedCertificate,
): Promise<{ entry: Omit<AuthorityEntry, "role">; loaded: Authority }> {
  const fingerprint = certificateFingerprint(root.certDer);
  const base = `ca-${fingerprint.slice(0, 16)}`;
  const entry = { fingerprint, cert: `${base}.pem`, key: `${base}.key` };
  await writeFileAtomic(join(dir, entry.key), root.keyPem, 0o600);
  await writeFileAtomic(join(dir, entry.cert), root.certPem, 0o600);
  return { entry, loaded: loadedAuthority(root.certDer, root.certPem) };
}

async function writeWfmSvidFiles(
  dir: string,
  svid: MintedCertificate,
): Promise<StateFile["wfmSvid"]> {
  const base = `wfm-svid-${svid.serialNumber.slice(0, 16)}`;
  const files = { cert: `${base}.pem`, key: `${base}.key` };
  await writeFileAtomic(join(dir, files.key), svid.keyPem, 0o600);
  await writeFileAtomic(join(dir, files.cert), svid.certPem, 0o600);
  return files;
}

async function writeState(dir: string, state: StateFile): Promise<void> {
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

const OWNED_FILE =
  /^(ca-[0-9a-f]{16}|wfm-svid-[0-9a-f]{16})\.(pem|key)$|^xs-[0-9a-f]{16}-by-[0-9a-f]{16}\.pem$|\.tmp$/;

/** Delete files a committed state no longer names (and temp files of interrupted writes). */
async function removeUnreferenced(dir: string, state: StateFile): Promise<void> {
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

function svidFromPem(certPem: string, keyPem: string): WfmSvid {
  const der = pemToDer(certPem)[0];
  if (!der) throw new IdentityError("identity.corrupt", "the WFM SVID file holds no certificate");
  const facts = readCertificate(der);
  return { certPem, keyPem, notBefore: facts.notBefore, notAfter: facts.notAfter };
}

/**
 * Create the trust domain in `<dataDir>/identity/`: a P-256 root CA and the WFM SVID
 * (`spiffe://<td>/margo/wfm/<wfm-id>` plus `config.hostnames` as DNS/IP SANs, so devices can also
 * run ordinary hostname checks). Refuses a folder that already holds one, so an operator cannot
 * replace a trust domain by accident. The caller should `close()` the result when done.
 */
export async function initIdentity(config: WfmConfig): Promise<FileIdentity> {
  checkConfig(config);
  const dir = identityDir(config);
  if (await exists(join(dir, STATE_FILE)))
    throw new IdentityError(
      "identity.exists",
      `${dir} already holds a trust domain; use it (loadIdentity) or choose an empty data directory`,
    );
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const root = await createRootCa({
    trustDomain: config.trustDomain,
    commonName: "Margo root CA 1",
  });
  const authority = await writeAuthorityFiles(dir, root);
  const issuer = { certDer: root.certDer, privateKey: root.keys.privateKey };
  const svid = await mintWfmSvid(config, issuer);
  const svidFiles = await writeWfmSvidFiles(dir, svid);
  const state: StateFile = {
    format: STATE_FORMAT,
    trustDomain: config.trustDomain,
    wfmId: config.wfmId,
    spiffeSequence: "1",
    authorities: [{ ...authority.entry, role: "issuing", publishedAt: new Date().toISOString() }],
    wfmSvid: svidFiles,
  };
  await writeState(dir, state);
  await syncDir(config.dataDir).catch(() => undefined);
  const identity = new FileIdentity(
    config,
    state,
    [{ ...authority.loaded, privateKey: root.keys.privateKey }],
    svidOf(svid),
  );
  identity.scheduleRenewal();
  return identity;
}

/**
 * Reopen the trust domain that initIdentity created. The folder must match the configured trust
 * domain and wfm-id (a mismatch means the wrong data directory). A WFM SVID already past its
 * renewal point is renewed before this returns.
 */
export async function loadIdentity(config: WfmConfig): Promise<FileIdentity> {
  checkConfig(config);
  const dir = identityDir(config);
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
    if (a.role === "issuing")
      loaded.privateKey = await importPrivateKeyPem(await readFile(join(dir, a.key), "utf8"));
    authorities.push(loaded);
  }
  if (state.authorities.filter((a) => a.role === "issuing").length !== 1)
    throw new IdentityError(
      "identity.corrupt",
      `${dir}/${STATE_FILE} must name exactly one issuing authority`,
    );
  const svid = svidFromPem(
    await readFile(join(dir, state.wfmSvid.cert), "utf8"),
    await readFile(join(dir, state.wfmSvid.key), "utf8"),
  );
  const identity = new FileIdentity(config, state, authorities, svid);
  const { notBefore, notAfter } = svid;
  const due = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT;
  if (Date.now() >= due) await identity.renewWfmSvid();
  else identity.scheduleRenewal();
  return identity;
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

/** PEM of every anchor in DER order; exported for tests that build TLS contexts by hand. */
export function anchorsPem(anchorsDer: readonly Buffer[]): string {
  return anchorsDer.map((d) => derToPem(d)).join("");
}
