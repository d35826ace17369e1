import { chmod, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { admin } from "@margo/proto";
import {
  createRootCa,
  derToPem,
  type Issuer,
  isValidSegment,
  isValidTrustDomain,
  miafName,
  mintSvid,
  operatorSpiffeId,
  syncDir,
  type VerifiedSvid,
  wfmClientSpiffeId,
  wfmSpiffeId,
} from "@margo/proto/identity";
import type { WfmConfig } from "../config.js";
import { bundleFor, discoveryFor } from "./documents.js";
import { type Authority, readRoots, writeRoot } from "./roots.js";
import {
  type AuthorityView,
  activateNext,
  publishNext,
  type RotationStep,
  retirePrevious,
} from "./rotation.js";
import {
  type AnchorRole,
  type AuthorityEntry,
  hasState,
  identityDir,
  readState,
  removeUnreferenced,
  STATE_FORMAT,
  type StateFile,
  writeState,
  writeWfmSvidFiles,
} from "./state-files.js";
import {
  IdentityError,
  type ServedDocument,
  type TlsMaterial,
  type VerifiedClient,
  type VerifiedOperator,
  type WfmIdentity,
} from "./types.js";
import { VerifyCache } from "./verify-cache.js";
import {
  mintWfmSvid,
  RenewalTimer,
  renewalDue,
  svidFromPem,
  svidOf,
  type WfmSvid,
} from "./wfm-svid.js";

export { writeCredentials } from "@margo/proto/identity";

/**
 * The WFM's trust domain authority (files under `<dataDir>/identity/`, see state-files.ts).
 *
 * CA rotation follows digest 5.6 in three operator steps, each one commit: publish (a `next` root
 * joins the bundle, nothing else changes), activate (it becomes `issuing`, the old one
 * `previous`, the WFM SVID is re-minted), retire (`previous` anchors leave the bundle). A restart
 * between steps resumes from state.json. The steps themselves are in rotation.ts; this class
 * serializes them and swaps the committed result in.
 */

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
  private readonly verifier: VerifyCache;
  private wfmSvid: WfmSvid;
  private bundleDoc: ServedDocument;
  private discoveryDoc: ServedDocument;
  private readonly listeners = new Set<() => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly renewal: RenewalTimer;

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
    this.verifier = new VerifyCache(
      config.trustDomain,
      authorities.map((a) => a.certDer),
    );
    this.wfmSvid = wfmSvid;
    this.bundleDoc = this.buildBundle();
    this.discoveryDoc = discoveryFor(config.trustDomain, config.trustPublicUrl);
    this.renewal = new RenewalTimer(
      () => this.wfmSvid,
      () => this.renewWfmSvid(),
    );
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

  /** Verify against the current anchors (cached per chain until they change, verify-cache.ts). */
  private verify(chainDer: readonly Buffer[], now: Date): VerifiedSvid {
    return this.verifier.verify(chainDer, now);
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

  /** Rotation step 1, publish (rotation.ts publishNext). */
  publishNextAuthority(): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      await this.commitStep(await publishNext(this.dir, this.trustDomain, this.view()));
      return this.authorityStatus();
    });
  }

  /** Rotation step 2, activate (rotation.ts activateNext); early only with `force`. */
  activateNextAuthority(force = false): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      await this.commitStep(await activateNext(this.dir, this.config, this.view(), force));
      return this.authorityStatus();
    });
  }

  /** Rotation step 3, retire (rotation.ts retirePrevious); nothing to retire commits nothing. */
  retirePreviousAuthorities(): Promise<admin.AuthorityStatus> {
    return this.serialized(async () => {
      const step = retirePrevious(this.view());
      if (step) await this.commitStep(step);
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
    this.renewal.close();
  }

  /** Arm the renewal timer at 2/3 of the current WFM SVID's lifetime. */
  scheduleRenewal(): void {
    this.renewal.schedule();
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
    return bundleFor(
      this.authorities.map((a) => a.certDer),
      this.spiffeSequence,
      this.config.bundleRefreshHintSeconds,
    );
  }

  private view(): AuthorityView {
    return { state: this.state, authorities: this.authorities };
  }

  private commitStep(step: RotationStep): Promise<void> {
    return this.commit(step.state, step.authorities, step.svid ?? this.wfmSvid);
  }

  /** Make `next` durable (state.json is the commit point), then swap memory and tell listeners. */
  private async commit(next: StateFile, authorities: Authority[], svid: WfmSvid): Promise<void> {
    await writeState(this.dir, next);
    const anchorsChanged =
      authorities.map((a) => a.fingerprint).join() !== this.anchorFingerprints().join();
    this.state = next;
    this.authorities = authorities;
    this.wfmSvid = svid;
    if (anchorsChanged) this.verifier.setAnchors(authorities.map((a) => a.certDer));
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
 * Create the trust domain in `<dataDir>/identity/`: a P-256 root CA and the WFM SVID
 * (`spiffe://<td>/margo/wfm/<wfm-id>` plus `config.hostnames` as DNS/IP SANs, so devices can also
 * run ordinary hostname checks). Refuses a folder that already holds one, so an operator cannot
 * replace a trust domain by accident. The caller should `close()` the result when done.
 */
export async function initIdentity(config: WfmConfig): Promise<FileIdentity> {
  checkConfig(config);
  const dir = identityDir(config);
  if (await hasState(dir))
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
  const authority = await writeRoot(dir, root);
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
  const state = await readState(dir, config);
  const authorities = await readRoots(dir, state);
  const svid = svidFromPem(
    await readFile(join(dir, state.wfmSvid.cert), "utf8"),
    await readFile(join(dir, state.wfmSvid.key), "utf8"),
  );
  const identity = new FileIdentity(config, state, authorities, svid);
  if (Date.now() >= renewalDue(svid)) await identity.renewWfmSvid();
  else identity.scheduleRenewal();
  return identity;
}

/** PEM of every anchor in DER order; exported for tests that build TLS contexts by hand. */
export function anchorsPem(anchorsDer: readonly Buffer[]): string {
  return anchorsDer.map((d) => derToPem(d)).join("");
}
