// reflect-metadata must load before @peculiar/x509 (its ASN.1 schemas use decorators).
import "reflect-metadata";
import { createHash, type webcrypto, X509Certificate } from "node:crypto";
import {
  type CallOptions,
  ChannelCredentials,
  type Client,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import type { admin, ProblemDetail } from "@margo/proto";
import {
  createRootCa,
  type Issuer,
  type MintedCertificate,
  mintCertificate,
  mintSvid,
} from "@margo/proto/identity";
import { decodeProblemDetail, encodeStateManifest } from "@margo/proto/wire";
import * as x509 from "@peculiar/x509";
import type {
  CreateDeploymentInput,
  ManifestSnapshot,
  Northbound,
  ParameterValues,
  Southbound,
} from "../src/core/api.js";
import { WfmError } from "../src/core/errors.js";
import { PROBLEM_METADATA_KEY } from "../src/grpc/status.js";
import {
  IdentityError,
  type TlsMaterial,
  type VerifiedClient,
  type VerifiedOperator,
  type WfmIdentity,
} from "../src/identity/types.js";

/**
 * Collaborators for the gRPC edge tests: a small but genuine certificate authority (P-256 SVIDs
 * minted by @margo/proto/identity, real chains, real TLS on loopback) and an in-memory core that keeps per-client manifests the way
 * the contract describes. The edge under test is the real one; only its collaborators are local,
 * so these tests run without the store, the registry or the full composition root.
 */

type Keys = webcrypto.CryptoKeyPair;

/** A test CA: the parsed certificate (tests put it in chains and anchors) and its key pair. */
export interface Ca {
  cert: x509.X509Certificate;
  keys: Keys;
}

// Only names CAs; serial numbers come from the library's CSPRNG.
let caCount = 1;

function toCa(minted: MintedCertificate): Ca {
  return { cert: new x509.X509Certificate(minted.certDer), keys: minted.keys };
}

function issuerOf(ca: Ca): Issuer {
  return { certDer: Buffer.from(ca.cert.rawData), privateKey: ca.keys.privateKey };
}

async function newCa(name: string): Promise<Ca> {
  caCount++;
  return toCa(
    await createRootCa({ trustDomain: "test", commonName: name, lifetimeSeconds: 24 * 3600 }),
  );
}

/**
 * A CA signed by `parent`: leaves it issues reach the anchor only through it. `keys` re-issues an
 * existing intermediate (same subject and key, so the same leaves chain through either copy);
 * `lifetimeMs` makes it expire before its leaves.
 */
export async function newIntermediate(
  parent: Ca,
  name: string,
  opts: { keys?: Keys; lifetimeMs?: number } = {},
): Promise<Ca> {
  // mintCertificate rather than createIntermediateCa: only it takes an existing key pair.
  return toCa(
    await mintCertificate({
      subject: `O=test, CN=${name}`,
      issuer: issuerOf(parent),
      ca: true,
      pathLength: 0,
      keyUsage: ["keyCertSign", "cRLSign"],
      lifetimeSeconds: (opts.lifetimeMs ?? 24 * 3600_000) / 1000,
      ...(opts.keys === undefined ? {} : { keys: opts.keys }),
    }),
  );
}

/** A leaf SVID signed by `ca`: the SPIFFE ID as the one URI SAN; a server adds DNS/IP SANs. */
export async function mintLeaf(
  ca: Ca,
  spiffeId: string,
  opts: { server?: boolean; lifetimeMs?: number } = {},
): Promise<{ certPem: string; keyPem: string }> {
  const { certPem, keyPem } = await mintSvid({
    issuer: issuerOf(ca),
    spiffeId,
    lifetimeSeconds: (opts.lifetimeMs ?? 3600_000) / 1000,
    ...(opts.server ? { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] } : {}),
  });
  return { certPem, keyPem };
}

/** PEM credentials a test client presents. */
export interface TestCredentials {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/**
 * A WfmIdentity with a rotatable CA. Verification is deliberately narrow (URI SAN shape, trust
 * domain, issuer among the anchors, validity): it stands in for the full identity module.
 */
export class TestIdentity implements WfmIdentity {
  readonly trustDomain = "example.org";
  readonly wfmId = "wfm-1";
  readonly wfmSpiffeId = "spiffe://example.org/margo/wfm/wfm-1";
  private anchors: Ca[] = [];
  private server!: { certPem: string; keyPem: string };
  private readonly listeners = new Set<() => void>();
  /** How often verifyClient/verifyOperator ran (the edge caches verdicts per leaf). */
  verifications = 0;

  static async create(): Promise<TestIdentity> {
    const id = new TestIdentity();
    id.anchors = [await newCa("ca-1")];
    id.server = await mintLeaf(id.issuing, id.wfmSpiffeId, { server: true });
    return id;
  }

  get issuing(): Ca {
    const ca = this.anchors[0];
    if (ca === undefined) throw new Error("no CA");
    return ca;
  }

  get anchorsPem(): string {
    return this.anchors.map((a) => a.cert.toString("pem")).join("\n");
  }

  serverTls(): TlsMaterial {
    return {
      certChainPem: this.server.certPem,
      keyPem: this.server.keyPem,
      anchorsPem: this.anchorsPem,
    };
  }

  async client(clientId: string): Promise<TestCredentials> {
    return this.creds(`${this.wfmSpiffeId}/client/${clientId}`);
  }

  async operatorCreds(name: string): Promise<TestCredentials> {
    return this.creds(`spiffe://${this.trustDomain}/operator/${name}`);
  }

  async creds(spiffeId: string, ca: Ca = this.issuing): Promise<TestCredentials> {
    return { ...(await mintLeaf(ca, spiffeId)), caPem: this.anchorsPem };
  }

  verifyClient(chainDer: readonly Buffer[], now = new Date()): VerifiedClient {
    const { id, notAfter } = this.verify(chainDer, now);
    const prefix = `${this.wfmSpiffeId}/client/`;
    const clientId = id.slice(prefix.length);
    if (!id.startsWith(prefix) || !/^[A-Za-z0-9._-]+$/.test(clientId)) {
      throw new IdentityError("svid.not-client", `${id} is not a client SVID of this WFM`);
    }
    return { clientId, spiffeId: id, notAfter };
  }

  verifyOperator(chainDer: readonly Buffer[], now = new Date()): VerifiedOperator {
    const { id, notAfter } = this.verify(chainDer, now);
    const m = /^spiffe:\/\/example\.org\/operator\/([A-Za-z0-9._-]+)$/.exec(id);
    if (m?.[1] === undefined)
      throw new IdentityError("svid.not-operator", `${id} is not an operator`);
    return { name: m[1], spiffeId: id, notAfter };
  }

  private verify(chainDer: readonly Buffer[], now: Date): { id: string; notAfter: Date } {
    this.verifications++;
    const der = chainDer[0];
    if (der === undefined) throw new IdentityError("svid.no-chain", "empty chain");
    const leaf = new X509Certificate(der);
    // Each certificate must be issued by the next; the last one by an anchor.
    const chain = chainDer.map((d) => new X509Certificate(d));
    const linked = chain.every((c, i) => {
      const issuer = chain[i + 1];
      return issuer === undefined || (c.checkIssued(issuer) && c.verify(issuer.publicKey));
    });
    const top = chain[chain.length - 1] ?? leaf;
    const issued =
      linked &&
      this.anchors.some((a) => {
        const anchor = new X509Certificate(Buffer.from(a.cert.rawData));
        return top.checkIssued(anchor) && top.verify(anchor.publicKey);
      });
    if (!issued) throw new IdentityError("svid.untrusted", "not issued by a current anchor");
    // As the real identity: the verdict holds until the first certificate on the path expires.
    const notAfter = new Date(Math.min(...chain.map((c) => Date.parse(c.validTo))));
    if (notAfter <= now)
      throw new IdentityError("svid.expired", "a certificate on the path expired");
    const uris = (leaf.subjectAltName ?? "")
      .split(", ")
      .filter((n) => n.startsWith("URI:"))
      .map((n) => n.slice(4));
    if (uris.length !== 1 || uris[0] === undefined)
      throw new IdentityError("svid.uri", "one URI SAN");
    return { id: uris[0], notAfter };
  }

  /** Rotation step 1: a new CA joins the anchors; issuance and the server SVID stay. */
  async publishNextAuthority(): Promise<admin.AuthorityStatus> {
    this.anchors = [...this.anchors, await newCa(`ca-${caCount}`)];
    this.emit();
    return this.authorityStatus();
  }

  /** Rotation step 2: the newest CA issues and signs a new server SVID. */
  async activateNextAuthority(): Promise<admin.AuthorityStatus> {
    const next = this.anchors.at(-1);
    if (next === undefined || next === this.issuing) throw new Error("nothing published");
    this.anchors = [next, ...this.anchors.slice(0, -1)];
    this.server = await mintLeaf(this.issuing, this.wfmSpiffeId, { server: true });
    this.emit();
    return this.authorityStatus();
  }

  authorityStatus(): admin.AuthorityStatus {
    return {
      spiffeSequence: BigInt(this.anchors.length),
      anchorFingerprints: [],
      anchors: [],
      refreshHintSeconds: 0,
    };
  }

  /** A new WFM SVID under the same anchors: an identity change after which every SVID still verifies. */
  async renewServer(): Promise<void> {
    this.server = await mintLeaf(this.issuing, this.wfmSpiffeId, { server: true });
    this.emit();
  }

  /** Swap the whole trust domain to a fresh CA at once: every earlier SVID stops verifying. */
  async replaceAuthority(): Promise<void> {
    this.anchors = [await newCa(`ca-${caCount}`)];
    this.server = await mintLeaf(this.issuing, this.wfmSpiffeId, { server: true });
    this.emit();
  }

  async retirePreviousAuthorities(): Promise<admin.AuthorityStatus> {
    this.anchors = [this.issuing];
    this.emit();
    return this.authorityStatus();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  discoveryDocument(): never {
    throw new Error("not used by the gRPC tests");
  }
  spiffeBundle(): never {
    throw new Error("not used by the gRPC tests");
  }
  mintClient(): never {
    throw new Error("not used by the gRPC tests");
  }
  mintOperator(): never {
    throw new Error("not used by the gRPC tests");
  }
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

interface ClientState {
  version: bigint;
  deployments: Map<string, { yaml: Buffer; digest: string; deviceId: string }>;
  snapshot?: ManifestSnapshot;
}

/**
 * An in-memory core honouring the Southbound/Northbound contract for what the edge exercises:
 * manifests with strictly increasing versions, exact-bytes YAML, per-client scoping, watches.
 */
export class MemoryCore implements Southbound, Northbound {
  readonly accepted = new Set<string>();
  private readonly clients = new Map<string, ClientState>();
  private readonly devices = new Map<string, admin.Device>();
  private readonly statuses = new Map<string, admin.ReportedStatus>();
  private readonly watchers = new Map<string, Set<(s: ManifestSnapshot) => void>>();
  private deploymentSeq = 0;
  resets = 0;
  /** performance.now() of the last committed change, the moment WatchManifest's 100 ms start. */
  lastChangeAt = 0;

  isAccepted(clientId: string): boolean {
    return this.accepted.has(clientId);
  }

  private state(clientId: string): ClientState {
    let s = this.clients.get(clientId);
    if (s === undefined) {
      s = { version: 1n, deployments: new Map() };
      this.clients.set(clientId, s);
    }
    return s;
  }

  private snapshot(clientId: string): ManifestSnapshot {
    const s = this.state(clientId);
    if (s.snapshot === undefined) {
      // The bundle reference only has to be well formed: these tests never fetch it.
      const bundleDigest = sha256(Buffer.from(`bundle ${clientId} ${s.version}`));
      const body = Buffer.from(
        encodeStateManifest({
          manifestVersion: s.version,
          ...(s.deployments.size > 0
            ? {
                bundle: {
                  mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
                  digest: bundleDigest,
                  url: `/api/v1/bundles/${bundleDigest}`,
                },
              }
            : {}),
          deployments: [...s.deployments].map(([deploymentId, d]) => ({
            deploymentId,
            digest: d.digest,
            url: `/api/v1/deployments/${deploymentId}/${d.digest}`,
          })),
        }),
      );
      s.snapshot = { clientId, manifestVersion: s.version, body, etag: `"${sha256(body)}"` };
    }
    return s.snapshot;
  }

  /** A change: bump the version and notify watchers synchronously, as the contract says. */
  private bump(clientId: string): void {
    const s = this.state(clientId);
    s.version += 1n;
    s.snapshot = undefined;
    const snap = this.snapshot(clientId);
    this.lastChangeAt = performance.now();
    for (const l of this.watchers.get(clientId) ?? []) l(snap);
  }

  async putCapabilities(clientId: string, deviceId: string, body: Uint8Array) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body).toString("utf8"));
    } catch {
      throw new WfmError("invalid-request", "body is not JSON");
    }
    if (typeof parsed !== "object" || parsed === null) {
      throw new WfmError("semantic-error", "not an object", [
        { field: "", message: "must be an object" },
      ]);
    }
    const key = `${clientId}\n${deviceId}`;
    const created = !this.devices.has(key);
    this.devices.set(key, { clientId, deviceId, reportedAt: new Date() });
    return { created };
  }

  async deleteCapabilities(clientId: string, deviceId: string): Promise<void> {
    if (!this.devices.delete(`${clientId}\n${deviceId}`)) {
      throw new WfmError("device-not-found", `no device ${deviceId}`);
    }
  }

  async manifest(clientId: string): Promise<ManifestSnapshot> {
    return this.snapshot(clientId);
  }

  async deploymentYaml(clientId: string, deploymentId: string, digest: string): Promise<Buffer> {
    const d = this.clients.get(clientId)?.deployments.get(deploymentId);
    if (d === undefined || d.digest !== digest) {
      throw new WfmError("deployment-not-found", `no deployment ${deploymentId} at ${digest}`);
    }
    return d.yaml;
  }

  /** Bundles by digest, as a test stores them (the core answers a digest with its bytes). */
  readonly bundles = new Map<string, Buffer>();

  async bundle(_clientId: string, digest: string): Promise<Buffer> {
    const bytes = this.bundles.get(digest);
    if (bytes === undefined) throw new WfmError("invalid-bundle", `no bundle ${digest}`);
    return bytes;
  }

  async reportStatus(clientId: string, deploymentId: string, body: Uint8Array) {
    if (!this.clients.get(clientId)?.deployments.has(deploymentId)) {
      throw new WfmError("deployment-not-found", `no deployment ${deploymentId}`);
    }
    JSON.parse(Buffer.from(body).toString("utf8"));
    const key = `${clientId}\n${deploymentId}`;
    const created = !this.statuses.has(key);
    this.statuses.set(key, {
      clientId,
      status: { deploymentId, adoptedManifestVersion: 1n, components: [] },
      reportedAt: new Date(),
    });
    return { created };
  }

  watch(clientId: string, listener: (s: ManifestSnapshot) => void): () => void {
    let set = this.watchers.get(clientId);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(clientId, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  watcherCount(clientId: string): number {
    return this.watchers.get(clientId)?.size ?? 0;
  }

  async addClient(clientId: string): Promise<admin.AddClientResponse> {
    if (this.accepted.has(clientId)) throw new WfmError("conflict", `${clientId} already admitted`);
    this.accepted.add(clientId);
    return {
      client: { clientId, spiffeId: `spiffe://example.org/margo/wfm/wfm-1/client/${clientId}` },
    };
  }

  async removeClient(clientId: string): Promise<void> {
    this.accepted.delete(clientId);
  }

  async listClients(): Promise<admin.Client[]> {
    return [...this.accepted].sort().map((clientId) => ({ clientId, spiffeId: clientId }));
  }

  async createDeployment(input: CreateDeploymentInput): Promise<admin.Deployment> {
    if (!this.accepted.has(input.clientId)) throw new WfmError("not-found", "no such client");
    const deploymentId = `00000000-0000-4000-8000-${String(++this.deploymentSeq).padStart(12, "0")}`;
    const yaml = Buffer.from(
      `apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nmetadata:\n  name: ${input.applicationId}\n  id: ${deploymentId}\n# ${JSON.stringify(input.parameters ?? {})}\n`,
    );
    const digest = sha256(yaml);
    this.state(input.clientId).deployments.set(deploymentId, {
      yaml,
      digest,
      deviceId: input.deviceId,
    });
    this.bump(input.clientId);
    return {
      deploymentId,
      clientId: input.clientId,
      deviceId: input.deviceId,
      applicationId: input.applicationId,
      version: input.version ?? "1.0.0",
      yaml,
      digest,
      manifestVersion: this.state(input.clientId).version,
    };
  }

  lastParameters: ParameterValues | undefined;

  async updateDeployment(
    deploymentId: string,
    parameters: ParameterValues,
  ): Promise<admin.Deployment> {
    this.lastParameters = parameters;
    for (const [clientId, s] of this.clients) {
      if (s.deployments.has(deploymentId)) {
        this.bump(clientId);
        return {
          deploymentId,
          clientId,
          deviceId: "",
          applicationId: "",
          version: "",
          yaml: Buffer.alloc(0),
          digest: "",
          manifestVersion: s.version,
        };
      }
    }
    throw new WfmError("not-found", `no deployment ${deploymentId}`);
  }

  async deleteDeployment(deploymentId: string): Promise<void> {
    for (const [clientId, s] of this.clients) {
      if (s.deployments.delete(deploymentId)) return this.bump(clientId);
    }
    throw new WfmError("not-found", `no deployment ${deploymentId}`);
  }

  async getDevice(clientId: string, deviceId: string): Promise<admin.Device | undefined> {
    return this.devices.get(`${clientId}\n${deviceId}`);
  }

  async listStatuses(filter: { clientId?: string; deploymentId?: string } = {}) {
    return [...this.statuses.values()].filter(
      (s) =>
        (filter.clientId === undefined || s.clientId === filter.clientId) &&
        (filter.deploymentId === undefined || s.status?.deploymentId === filter.deploymentId),
    );
  }

  async reset(): Promise<void> {
    this.resets++;
    this.devices.clear();
    this.statuses.clear();
  }

  private unused(): never {
    throw new WfmError("internal", "not used by the gRPC tests");
  }
  issueClientCredentials = async (): Promise<admin.ClientCredentials> => this.unused();
  issueOperatorCredentials = async (): Promise<admin.ClientCredentials> => this.unused();
  registerApplication = async (): Promise<admin.Application> => this.unused();
  listApplications = async (): Promise<admin.Application[]> => this.unused();
  getApplication = async (): Promise<admin.Application> => this.unused();
  listDeployments = async (): Promise<admin.Deployment[]> => this.unused();
  listDevices = async (): Promise<admin.Device[]> => this.unused();
  publishNextAuthority = async (): Promise<admin.AuthorityStatus> => this.unused();
  activateNextAuthority = async (): Promise<admin.AuthorityStatus> => this.unused();
  retirePreviousAuthorities = async (): Promise<admin.AuthorityStatus> => this.unused();
  authorityStatus = async (): Promise<admin.AuthorityStatus> => this.unused();
}

/** mTLS channel credentials for a test client; the server name is checked against the WFM SVID. */
export function channelCredentials(creds: TestCredentials): ChannelCredentials {
  return ChannelCredentials.createSsl(
    Buffer.from(creds.caPem),
    Buffer.from(creds.keyPem),
    Buffer.from(creds.certPem),
  );
}

/**
 * Options every test channel passes: grpc-js puts the target host in SNI, and an IP there is
 * deprecated (DEP0123; RFC 6066 3 allows DNS names only). The name is only a hint to the server
 * and matches the DNS SAN of test and WFM SVIDs; the SPIFFE ID is what identifies the WFM.
 */
export const TEST_CHANNEL_OPTIONS = { "grpc.ssl_target_name_override": "localhost" } as const;

/**
 * Calls a unary client method as a promise. The parameter mirrors the generated clients' last
 * overload (request, metadata, options, callback), which is the one TypeScript infers from.
 */
export function call<Req, Res>(
  client: Client,
  method: (
    req: Req,
    metadata: Metadata,
    options: Partial<CallOptions>,
    cb: (err: ServiceError | null, res: Res) => void,
  ) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The problem+json body carried in trailing metadata. */
export function problemOfError(err: unknown): ProblemDetail | undefined {
  const md = (err as { metadata?: Metadata }).metadata;
  const raw = md?.get(PROBLEM_METADATA_KEY)[0];
  if (!Buffer.isBuffer(raw)) return undefined;
  return decodeProblemDetail(raw).value;
}
