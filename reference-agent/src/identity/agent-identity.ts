import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  anchorsFromBundleJson,
  CREDENTIAL_FILES,
  certificateFingerprint,
  derToPem,
  encodeAnchorsBundle,
  miafName,
  parseSpiffeId,
  pemToDer,
  readCertificate,
  SvidVerificationError,
  TrustAnchors,
  verifySvid,
} from "@margo/proto/identity/light";
import type { AgentConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import { mutant } from "../mutants.js";
import type { AgentStore, TrustRecord } from "../state/store.js";
import { type AgentIdentity, IdentityCheckError, type TlsMaterial } from "./types.js";

/**
 * The identity folder cannot be used: the agent refuses to start rather than run with an identity
 * or trust it cannot vouch for (no TOFU, item 18). `reason` is stable for logs and tests.
 */
export class IdentitySetupError extends Error {
  constructor(
    readonly reason:
      | "svid-missing"
      | "key-missing"
      | "svid-not-miaf-client"
      | "bundle-missing"
      | "bundle-invalid",
    message: string,
  ) {
    super(message);
    this.name = "IdentitySetupError";
  }
}

/** What is known about the anchors in use (AgentView.trust, refresh decisions). */
export interface TrustState {
  sequence?: bigint;
  refreshHintSeconds?: number;
  etag?: string;
  anchors: number;
  acceptedAt: number;
  /** SHA-256 hex of each anchor, for logs. */
  fingerprints: string[];
}

/** Tolerated clock skew when judging a server SVID's validity (digest 5.2: small and bounded). */
const SKEW_SECONDS = 60;

/**
 * The agent's identity read from `config.identityDir`, and the trust anchors it accepts. Anchors
 * come from the store when a refreshed bundle was accepted before (it survives restarts), else
 * from the provisioned bundle, which is then saved so both paths look the same from here on.
 */
export class FileAgentIdentity implements AgentIdentity {
  readonly clientSpiffeId: string;
  readonly trustDomain: string;
  readonly expectedWfmId: string;
  private material: TlsMaterial;
  private anchors: TrustAnchors;
  private trust: TrustState;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly config: AgentConfig,
    private readonly store: AgentStore,
    private readonly log: AgentLog,
    svid: { chainPem: string; keyPem: string; spiffeId: string; trustDomain: string; wfm: string },
    trust: { record: TrustRecord; anchorsDer: Buffer[] },
  ) {
    this.clientSpiffeId = svid.spiffeId;
    this.trustDomain = svid.trustDomain;
    this.expectedWfmId = svid.wfm;
    this.anchors = new TrustAnchors(trust.anchorsDer);
    this.trust = trustState(trust.record, trust.anchorsDer);
    this.material = {
      certChainPem: svid.chainPem,
      keyPem: svid.keyPem,
      anchorsPem: trust.anchorsDer.map((d) => derToPem(d)).join(""),
    };
  }

  /**
   * Read the identity folder and the stored trust. Throws IdentitySetupError when the SVID is not
   * a MIAF client SVID or no anchor is available from either the store or the folder.
   */
  static async open(
    config: AgentConfig,
    store: AgentStore,
    log: AgentLog,
  ): Promise<FileAgentIdentity> {
    const svid = await readSvid(config.identityDir);
    let record = store.readTrust();
    let anchorsDer: Buffer[] | undefined;
    if (record) {
      try {
        anchorsDer = anchorsFromBundleJson(record.bundleJson).anchors;
      } catch (e) {
        // A stored bundle was checked when accepted; if it no longer parses the store is damaged,
        // and the provisioned bundle is the only honest fallback (still no TOFU).
        log({
          level: "warn",
          msg: "stored trust bundle unreadable; using the provisioned one",
          kind: "trust-bundle-invalid",
          error: (e as Error).message,
        });
        record = undefined;
      }
    }
    if (!record || !anchorsDer) {
      const provisioned = await readProvisionedBundle(config.identityDir);
      record = {
        bundleJson: provisioned.bundleJson,
        ...(provisioned.sequence !== undefined ? { sequence: provisioned.sequence } : {}),
        ...(provisioned.refreshHintSeconds !== undefined
          ? { refreshHintSeconds: provisioned.refreshHintSeconds }
          : {}),
        acceptedAt: Date.now(),
      };
      anchorsDer = provisioned.anchors;
      store.saveTrust(record);
    }
    const identity = new FileAgentIdentity(config, store, log, svid, { record, anchorsDer });
    identity.checkOwnSvid();
    log({
      level: "info",
      msg: "identity loaded",
      clientSpiffeId: identity.clientSpiffeId,
      expectedWfmId: identity.expectedWfmId,
      anchors: identity.trust.anchors,
      sequence: identity.trust.sequence,
    });
    return identity;
  }

  tls(): TlsMaterial {
    return this.material;
  }

  /** The anchors in use and where they came from. */
  trustState(): TrustState {
    return this.trust;
  }

  verifyServer(chainDer: Uint8Array[], expectedId?: string): void {
    const id = this.verifyChain(chainDer);
    const want = expectedId ?? this.expectedWfmId;
    if (id !== want && !mutant("wfm-id-not-checked"))
      throw new IdentityCheckError(
        "spiffe-id-mismatch",
        `the server presented ${id}; only ${want} is accepted (item 8)`,
      );
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Replace (never merge, item 22) the anchors with those of `bundleJson`, persist them and tell
   * every connection holder. The caller has already judged the bundle (sequence, source); this
   * only refuses what cannot be anchors at all (BundleError from anchorsFromBundleJson, item 21).
   */
  replaceBundle(
    bundleJson: Uint8Array,
    meta: { sequence?: bigint; refreshHintSeconds?: number; etag?: string } = {},
  ): TrustState {
    const { anchors: fresh } = anchorsFromBundleJson(bundleJson);
    const anchors = mutant("bundle-merged")
      ? [...fresh, ...pemToDer(this.material.anchorsPem)]
      : fresh;
    const set = new TrustAnchors(anchors);
    const record: TrustRecord = {
      bundleJson: Uint8Array.from(bundleJson),
      ...(meta.sequence !== undefined ? { sequence: meta.sequence } : {}),
      ...(meta.refreshHintSeconds !== undefined
        ? { refreshHintSeconds: meta.refreshHintSeconds }
        : {}),
      ...(meta.etag !== undefined ? { etag: meta.etag } : {}),
      acceptedAt: Date.now(),
    };
    // Durable first: a crash after the swap must not come back with the old anchors.
    this.store.saveTrust(record);
    this.anchors = set;
    this.trust = trustState(record, anchors);
    this.material = { ...this.material, anchorsPem: anchors.map((d) => derToPem(d)).join("") };
    this.log({
      level: "info",
      msg: "trust bundle replaced",
      anchors: anchors.length,
      sequence: meta.sequence,
      fingerprints: this.trust.fingerprints,
    });
    this.checkOwnSvid();
    this.emit();
    return this.trust;
  }

  /**
   * Re-read svid.pem and svid.key (an operator renewed them). The SVID must keep the same SPIFFE
   * ID: a different one would change which WFM this agent trusts, which is a re-provisioning.
   */
  async reloadSvid(): Promise<void> {
    const svid = await readSvid(this.config.identityDir);
    if (svid.spiffeId !== this.clientSpiffeId)
      throw new IdentitySetupError(
        "svid-not-miaf-client",
        `the renewed SVID names ${svid.spiffeId}, not ${this.clientSpiffeId}; restart the agent to change identity`,
      );
    this.material = { ...this.material, certChainPem: svid.chainPem, keyPem: svid.keyPem };
    this.log({ level: "info", msg: "client SVID reloaded", clientSpiffeId: svid.spiffeId });
    this.checkOwnSvid();
    this.emit();
  }

  private verifyChain(chainDer: Uint8Array[]): string {
    try {
      return verifySvid(chainDer, this.anchors, {
        trustDomain: this.trustDomain,
        skewSeconds: SKEW_SECONDS,
      }).spiffeId;
    } catch (e) {
      if (e instanceof SvidVerificationError) throw new IdentityCheckError(e.rule, e.message);
      throw e;
    }
  }

  /** The own SVID should chain to the anchors; if not, the WFM will refuse us: say so early. */
  private checkOwnSvid(): void {
    try {
      verifySvid(pemToDer(this.material.certChainPem), this.anchors, {
        trustDomain: this.trustDomain,
        skewSeconds: SKEW_SECONDS,
      });
    } catch (e) {
      this.log({
        level: "warn",
        msg: "own client SVID does not verify against the current anchors",
        kind: "own-svid-unverified",
        error: (e as Error).message,
      });
    }
  }

  private emit(): void {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (e) {
        this.log({ level: "error", msg: "identity listener failed", error: (e as Error).message });
      }
    }
  }
}

function trustState(record: TrustRecord, anchorsDer: Buffer[]): TrustState {
  return {
    ...(record.sequence !== undefined ? { sequence: record.sequence } : {}),
    ...(record.refreshHintSeconds !== undefined
      ? { refreshHintSeconds: record.refreshHintSeconds }
      : {}),
    ...(record.etag !== undefined ? { etag: record.etag } : {}),
    anchors: anchorsDer.length,
    acceptedAt: record.acceptedAt,
    fingerprints: anchorsDer.map((d) => certificateFingerprint(d)),
  };
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** svid.pem + svid.key, and the MIAF client name of the leaf's single URI SAN. */
async function readSvid(dir: string) {
  const chain = await readOptional(join(dir, CREDENTIAL_FILES.chain));
  if (!chain) throw new IdentitySetupError("svid-missing", `${dir}/svid.pem is missing`);
  const key = await readOptional(join(dir, CREDENTIAL_FILES.key));
  if (!key) throw new IdentitySetupError("key-missing", `${dir}/svid.key is missing`);
  const chainPem = chain.toString("utf8");
  const leafDer = pemToDer(chainPem)[0];
  if (!leafDer)
    throw new IdentitySetupError("svid-missing", `${dir}/svid.pem holds no certificate`);
  let uris: string[];
  try {
    uris = readCertificate(leafDer).uris;
  } catch (e) {
    throw new IdentitySetupError(
      "svid-missing",
      `${dir}/svid.pem: leaf unreadable: ${(e as Error).message}`,
    );
  }
  const notClient = (why: string) =>
    new IdentitySetupError(
      "svid-not-miaf-client",
      `${dir}/svid.pem: ${why}; expected one URI SAN spiffe://<td>/margo/wfm/<wfm-id>/client/<client-id>`,
    );
  if (uris.length !== 1) throw notClient(`the leaf has ${uris.length} URI SANs`);
  const uri = uris[0] ?? "";
  let name: ReturnType<typeof miafName>;
  try {
    name = miafName(parseSpiffeId(uri));
  } catch (e) {
    throw notClient(`${uri} is not a SPIFFE ID (${(e as Error).message})`);
  }
  if (name?.kind !== "wfm-client") throw notClient(`${uri} is not a WFM client ID`);
  return {
    chainPem,
    keyPem: key.toString("utf8"),
    spiffeId: uri,
    trustDomain: name.trustDomain,
    wfm: `spiffe://${name.trustDomain}/margo/wfm/${name.wfmId}`,
  };
}

/** bundle.json (preferred: it carries sequence and hint) or bundle.pem; one of them must exist. */
async function readProvisionedBundle(dir: string) {
  const json = await readOptional(join(dir, CREDENTIAL_FILES.bundleJson));
  if (json) {
    try {
      const { anchors, bundle } = anchorsFromBundleJson(json);
      return {
        bundleJson: Uint8Array.from(json),
        anchors,
        sequence: bundle.spiffeSequence,
        refreshHintSeconds:
          bundle.spiffeRefreshHint !== undefined ? Number(bundle.spiffeRefreshHint) : undefined,
      };
    } catch (e) {
      throw new IdentitySetupError(
        "bundle-invalid",
        `${dir}/bundle.json: ${(e as Error).message} (item 21: no usable anchor)`,
      );
    }
  }
  const pem = await readOptional(join(dir, CREDENTIAL_FILES.bundlePem));
  if (pem) {
    const anchors = pemToDer(pem.toString("utf8"));
    if (anchors.length === 0)
      throw new IdentitySetupError("bundle-invalid", `${dir}/bundle.pem holds no certificate`);
    try {
      new TrustAnchors(anchors);
    } catch (e) {
      throw new IdentitySetupError("bundle-invalid", `${dir}/bundle.pem: ${(e as Error).message}`);
    }
    return {
      bundleJson: Uint8Array.from(encodeAnchorsBundle(anchors, {})),
      anchors,
      sequence: undefined,
      refreshHintSeconds: undefined,
    };
  }
  throw new IdentitySetupError(
    "bundle-missing",
    `${dir} has neither bundle.json nor bundle.pem: the agent never trusts a WFM on first use (item 18)`,
  );
}
