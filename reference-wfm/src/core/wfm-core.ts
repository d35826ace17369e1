import { randomUUID } from "node:crypto";
import type { admin } from "@margo/proto";
import { isValidSegment } from "@margo/proto/identity";
import { decodeApplicationDeployment } from "@margo/proto/wire";
import type { WfmIdentity } from "../identity/types.js";
import { mutant } from "../mutants.js";
import type {
  DeploymentRecord,
  DesiredStateChange,
  ManifestRecord,
  WfmStore,
} from "../store/store.js";
import {
  toAdminApplication,
  toAdminClient,
  toAdminDeployment,
  toAdminDevice,
  toAdminStatus,
} from "./admin-mapping.js";
import type {
  CreateDeploymentInput,
  ManifestSnapshot,
  Northbound,
  ParameterValues,
  Southbound,
} from "./api.js";
import { defaultRegistryFactory, pullApplication, type RegistryFactory } from "./applications.js";
import { clientIdProblem } from "./client-id.js";
import {
  buildDeployment,
  immutableChanges,
  type ParsedDescription,
  parseDescription,
  resolveParameters,
  selectProfile,
} from "./deployment-builder.js";
import { checkDeviceIdPolicy } from "./device-id.js";
import { type FieldError, WfmError } from "./errors.js";
import { readCapabilities, readStatus } from "./intake.js";
import { buildManifest } from "./manifest-builder.js";

export type { RegistryFactory } from "./applications.js";

/** What the core needs from the outside; everything else it derives. */
export interface WfmCoreDeps {
  /** Owned by the caller: `close()` of the core leaves it open. */
  store: WfmStore;
  identity: WfmIdentity;
  /** Injected so tests can pin timestamps; defaults to the wall clock. */
  clock?: () => Date;
  /** How registries are reached when registering applications; defaults to OciClient. */
  registry?: RegistryFactory;
}

/** The WFM's domain: what every edge (REST, gRPC, CLI) calls. */
export type WfmCore = Southbound & Northbound & { close(): Promise<void> };

type Listener = (snapshot: ManifestSnapshot) => void;

/** Revisions whose component names stay cached (a few hundred bytes each). */
const COMPONENT_CACHE_LIMIT = 10_000;

/** Changes to a client's live deployment set, decided inside the store's transaction. */
type Mutation = (
  live: readonly DeploymentRecord[],
  nextVersion: bigint,
) => { upserts: DeploymentRecord[]; deletes: string[] };

function snapshotOf(m: ManifestRecord): ManifestSnapshot {
  return { clientId: m.clientId, manifestVersion: m.manifestVersion, body: m.body, etag: m.etag };
}

function semantic(message: string, errors: FieldError[]): WfmError {
  return new WfmError("semantic-error", message, errors);
}

/**
 * Loads the accepted-client set and every current manifest from the store, then serves from
 * memory what devices poll (isAccepted, manifest, bundle) and goes to the store for the rest.
 * Every desired-state change is one `commitDesiredState`, after which the cache moves forward
 * and watchers are told synchronously (WatchManifest's 100 ms budget).
 */
export async function createWfmCore(deps: WfmCoreDeps): Promise<WfmCore> {
  const { store, identity } = deps;
  const now = deps.clock ?? (() => new Date());
  const registryFactory = deps.registry ?? defaultRegistryFactory;

  const accepted = new Set<string>();
  for (const c of await store.listClients()) if (!c.retiredAt) accepted.add(c.clientId);
  const manifests = new Map<string, ManifestRecord>();
  for (const m of await store.listManifests()) manifests.set(m.clientId, m);
  const watchers = new Map<string, Set<Listener>>();
  /** Descriptions parsed once per (application, version); registered bytes never change. */
  const descriptions = new Map<string, ParsedDescription>();

  /** Moves the cache forward only: two commits resolving out of order must not roll it back. */
  function publish(m: ManifestRecord): void {
    const cached = manifests.get(m.clientId);
    if (cached && cached.manifestVersion >= m.manifestVersion) return;
    manifests.set(m.clientId, m);
    const snapshot = snapshotOf(m);
    for (const listener of watchers.get(m.clientId) ?? []) {
      try {
        listener(snapshot);
      } catch {
        // One broken watcher (e.g. a stream closed mid-write) must not stop the others.
      }
    }
  }

  /** The store-side change for `mutate`: applies it and builds the resulting manifest. */
  function changeOf(clientId: string, mutate: Mutation): DesiredStateChange {
    return ({ deployments, nextVersion }) => {
      const { upserts, deletes } = mutate(deployments, nextVersion);
      const live = new Map(deployments.map((d) => [d.deploymentId, d]));
      for (const id of deletes) live.delete(id);
      for (const u of upserts) live.set(u.deploymentId, u);
      return {
        upserts,
        deletes,
        manifest: buildManifest(clientId, [...live.values()], nextVersion),
      };
    };
  }

  async function commit(clientId: string, mutate: Mutation): Promise<ManifestRecord> {
    const record = await store.commitDesiredState(clientId, changeOf(clientId, mutate));
    publish(record);
    return record;
  }

  /**
   * Component names per YAML digest: a status POST checks components[] against them, and the
   * bytes behind a digest never change, so the YAML is decoded once per revision, not per report.
   * Bounded so a long-running WFM with many revisions does not grow without limit.
   */
  const componentNames = new Map<string, readonly string[]>();
  function componentsOf(rec: DeploymentRecord): readonly string[] {
    const cached = componentNames.get(rec.digest);
    if (cached) return cached;
    const decoded = decodeApplicationDeployment(rec.yaml);
    const names = decoded.value?.spec?.deploymentProfile?.components.map((c) => c.name) ?? [];
    if (componentNames.size >= COMPONENT_CACHE_LIMIT) {
      const oldest = componentNames.keys().next().value;
      if (oldest !== undefined) componentNames.delete(oldest);
    }
    componentNames.set(rec.digest, names);
    return names;
  }

  async function description(applicationId: string, version: string): Promise<ParsedDescription> {
    const key = `${applicationId}\u0000${version}`;
    const cached = descriptions.get(key);
    if (cached) return cached;
    const app = await store.getApplication(applicationId, version);
    if (!app)
      throw new WfmError("not-found", `application ${applicationId} ${version} is not registered`);
    const parsed = parseDescription(app.descriptionYaml);
    descriptions.set(key, parsed);
    return parsed;
  }

  function requireAdmitted(clientId: string): void {
    if (!accepted.has(clientId))
      throw new WfmError("not-found", `client ${JSON.stringify(clientId)} is not admitted`);
  }

  async function liveDeployment(deploymentId: string): Promise<DeploymentRecord> {
    const rec = await store.getDeployment(deploymentId);
    if (!rec || rec.deletedAt)
      throw new WfmError("not-found", `no deployment ${JSON.stringify(deploymentId)}`);
    return rec;
  }

  /** Inside a transaction: the deployment must still be live, or a concurrent delete won. */
  function stillLive(live: readonly DeploymentRecord[], deploymentId: string): DeploymentRecord {
    const found = live.find((d) => d.deploymentId === deploymentId);
    if (!found) throw new WfmError("not-found", `no deployment ${JSON.stringify(deploymentId)}`);
    return found;
  }

  const southbound: Southbound = {
    isAccepted: (clientId) => accepted.has(clientId),

    async putCapabilities(clientId, deviceId, body) {
      const refused = checkDeviceIdPolicy(deviceId);
      // Named as the REST edge names a path parameter ("deviceId", not a body pointer).
      if (refused) throw semantic("invalid deviceId", [{ field: "deviceId", message: refused }]);
      readCapabilities(deviceId, body);
      const slash = deviceId.indexOf("/");
      // The gateway is the first segment; intermediate path segments need not be devices
      // (digest 8: gateway1/path1/deviceA). The store checks it inside the write (item 27).
      const requireParent =
        slash > 0 && !mutant("child-before-parent-accepted") ? deviceId.slice(0, slash) : undefined;
      return store.putDevice(
        { clientId, deviceId, capabilities: Buffer.from(body), receivedAt: now() },
        requireParent !== undefined ? { requireParent } : {},
      );
    },

    async deleteCapabilities(clientId, deviceId) {
      // Refused like PUT, so no id is judged differently on the way in and on the way out.
      const refused = checkDeviceIdPolicy(deviceId);
      if (refused) throw semantic("invalid deviceId", [{ field: "deviceId", message: refused }]);
      // A gateway takes its children with it, in one transaction: a child without its gateway
      // would break the item-27 invariant, and the OpenAPI offers DELETE no 409 to refuse with.
      if ((await store.deleteDeviceTree(clientId, deviceId)) === 0)
        throw new WfmError(
          "device-not-found",
          `device ${JSON.stringify(deviceId)} is not registered`,
        );
    },

    async manifest(clientId) {
      const cached = manifests.get(clientId);
      if (cached) return snapshotOf(cached);
      if (!accepted.has(clientId))
        throw new WfmError("not-authorized", `client ${JSON.stringify(clientId)} is not accepted`);
      return snapshotOf(await commit(clientId, () => ({ upserts: [], deletes: [] })));
    },

    async deploymentYaml(clientId, deploymentId, digest) {
      // Current revisions and those the previous manifest referenced (a device may still be
      // completing manifest N-1 when N is committed); older ones are gone (item 48).
      if (mutant("yaml-cross-client"))
        clientId = (await store.getDeployment(deploymentId))?.clientId ?? clientId;
      const yaml = await store.getDeploymentYaml(clientId, deploymentId, digest);
      if (!yaml)
        throw new WfmError(
          "deployment-not-found",
          `no deployment ${JSON.stringify(deploymentId)} with digest ${digest}`,
        );
      return yaml;
    },

    async bundle(clientId, digest) {
      // The current bundle from memory (every poll cycle fetches it); the previous one, needed
      // only by a device finishing manifest N-1, from the store.
      const b = manifests.get(clientId)?.bundle;
      if (b && b.digest === digest) return b.bytes;
      const previous = await store.getBundle(clientId, digest);
      if (!previous) throw new WfmError("invalid-bundle", `no bundle with digest ${digest}`);
      return previous;
    },

    async reportStatus(clientId, deploymentId, body) {
      const status = readStatus(deploymentId, body);
      const rec = await store.getDeployment(deploymentId);
      if (!rec || rec.clientId !== clientId)
        throw semantic("unknown deployment", [
          {
            field: "/deploymentId",
            message: `deployment ${JSON.stringify(deploymentId)} was never issued to this client`,
          },
        ]);
      const errors: FieldError[] = [];
      const current = manifests.get(clientId)?.manifestVersion ?? 0n;
      if (status.adoptedManifestVersion > current)
        errors.push({
          field: "/adoptedManifestVersion",
          message: `${status.adoptedManifestVersion} is newer than the latest manifestVersion ${current}`,
        });
      if (status.deviceId !== undefined && !deviceMatches(rec.deviceId, status.deviceId))
        errors.push({
          field: "/deviceId",
          message: `${JSON.stringify(status.deviceId)} is not the deployment's target ${JSON.stringify(rec.deviceId)}`,
        });
      errors.push(
        ...componentErrors(
          rec.deploymentId,
          componentsOf(rec),
          status.components.map((c) => c.name),
        ),
      );
      if (errors.length > 0)
        throw semantic("the status report does not fit the deployment", errors);
      return store.putStatus({
        clientId,
        deploymentId,
        body: Buffer.from(body),
        receivedAt: now(),
      });
    },

    watch(clientId, listener) {
      let set = watchers.get(clientId);
      if (!set) {
        set = new Set();
        watchers.set(clientId, set);
      }
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && watchers.get(clientId) === set) watchers.delete(clientId);
      };
    },
  };

  const northbound: Northbound = {
    async addClient(clientId, displayName) {
      const why = clientIdProblem(clientId);
      if (why) throw semantic("invalid client id", [{ field: "/clientId", message: why }]);
      if (accepted.has(clientId))
        throw new WfmError("conflict", `client ${JSON.stringify(clientId)} is already admitted`);
      const existing = await store.getClient(clientId);
      const credentials = await identity.mintClient(clientId);
      const record = {
        clientId,
        ...(displayName !== undefined
          ? { displayName }
          : existing?.displayName !== undefined
            ? { displayName: existing.displayName }
            : {}),
        addedAt: existing?.addedAt ?? now(),
      };
      await store.putClient(record);
      // A re-admitted client keeps its manifest and version sequence; a new one starts at 1
      // before it is accepted, so its first poll can only ever see version 1.
      if (!manifests.has(clientId) && !(await store.getManifest(clientId)))
        await commit(clientId, () => ({ upserts: [], deletes: [] }));
      else if (!manifests.has(clientId)) {
        const m = await store.getManifest(clientId);
        if (m) publish(m);
      }
      accepted.add(clientId);
      return { client: toAdminClient(record, identity.wfmSpiffeId), credentials };
    },

    async removeClient(clientId) {
      const rec = await store.getClient(clientId);
      if (!rec || rec.retiredAt || !accepted.has(clientId))
        throw new WfmError("not-found", `client ${JSON.stringify(clientId)} is not admitted`);
      // Policy first: the very next request of this client is refused even if the write is slow.
      accepted.delete(clientId);
      try {
        await store.putClient({ ...rec, retiredAt: now() });
      } catch (err) {
        accepted.add(clientId);
        throw err;
      }
    },

    async listClients() {
      return (await store.listClients())
        .filter((c) => !c.retiredAt)
        .map((c) => toAdminClient(c, identity.wfmSpiffeId));
    },

    async issueClientCredentials(clientId, lifetimeSeconds) {
      requireAdmitted(clientId);
      return identity.mintClient(clientId, lifetimeSeconds || undefined);
    },

    async issueOperatorCredentials(name, lifetimeSeconds) {
      if (!isValidSegment(name))
        throw semantic("invalid operator name", [
          {
            field: "/name",
            message: `${JSON.stringify(name)} is not one MIAF name segment (RFC 3986 unreserved characters, not . or ..)`,
          },
        ]);
      return identity.mintOperator(name, lifetimeSeconds || undefined);
    },

    async registerApplication(ociReference, plainHttp) {
      const pulled = await pullApplication(registryFactory, ociReference, plainHttp, now());
      const stored = await store.putApplication(pulled);
      if (stored.manifestDigest !== pulled.manifestDigest)
        throw new WfmError(
          "conflict",
          `${stored.applicationId} ${stored.version} is already registered from another package (${stored.manifestDigest})`,
        );
      return toAdminApplication(stored);
    },

    async listApplications() {
      return (await store.listApplications()).map(toAdminApplication);
    },

    async getApplication(applicationId, version) {
      const app = await store.getApplication(applicationId, version);
      if (!app)
        throw new WfmError(
          "not-found",
          `application ${applicationId}${version ? ` ${version}` : ""} is not registered`,
        );
      return toAdminApplication(app);
    },

    /**
     * The target device need not have reported capabilities yet (pre-provisioning: the device
     * finds the deployment in its manifest on its first poll), but its id must pass the WFM's
     * deviceId policy, so nothing unreachable or path-like is ever stored.
     */
    async createDeployment(input: CreateDeploymentInput) {
      requireAdmitted(input.clientId);
      const refused = checkDeviceIdPolicy(input.deviceId, { wildcard: true });
      if (refused) throw semantic("invalid deviceId", [{ field: "/deviceId", message: refused }]);
      const app = await store.getApplication(input.applicationId, input.version);
      if (!app)
        throw new WfmError(
          "not-found",
          `application ${input.applicationId}${input.version ? ` ${input.version}` : ""} is not registered`,
        );
      const desc = await description(app.applicationId, app.version);
      const profile = selectProfile(desc.model, input);
      const overrides = input.parameters ?? {};
      const resolved = resolveParameters(desc.doc, profile, overrides);
      const deploymentId = randomUUID();
      const built = buildDeployment({
        deploymentId,
        deviceId: input.deviceId,
        description: desc,
        profile,
        parameters: resolved.parameters,
      });
      const at = now();
      let created: DeploymentRecord | undefined;
      await commit(input.clientId, (_live, nextVersion) => {
        created = {
          deploymentId,
          clientId: input.clientId,
          deviceId: input.deviceId,
          applicationId: app.applicationId,
          version: app.version,
          profileId: profile.id,
          parametersJson: JSON.stringify(overrides),
          yaml: built.yaml,
          digest: built.digest,
          manifestVersion: nextVersion,
          createdAt: at,
          updatedAt: at,
        };
        return { upserts: [created], deletes: [] };
      });
      if (!created) throw new WfmError("internal", "the desired-state change did not run");
      return toAdminDeployment(created);
    },

    async updateDeployment(deploymentId, parameters: ParameterValues) {
      const rec = await liveDeployment(deploymentId);
      const desc = await description(rec.applicationId, rec.version);
      const profile = selectProfile(desc.model, { profileId: rec.profileId });
      const before = resolveParameters(desc.doc, profile, JSON.parse(rec.parametersJson));
      const after = resolveParameters(desc.doc, profile, parameters);
      const frozen = immutableChanges(desc.doc, before.values, after.values);
      if (frozen.length > 0) throw semantic("immutable settings cannot change", frozen);
      const built = buildDeployment({
        deploymentId,
        deviceId: rec.deviceId,
        description: desc,
        profile,
        parameters: after.parameters,
      });
      // Same bytes, same desired state: no new revision and no new manifestVersion.
      if (built.digest === rec.digest) return toAdminDeployment(rec);
      const at = now();
      let updated: DeploymentRecord | undefined;
      await commit(rec.clientId, (live, nextVersion) => {
        const current = stillLive(live, deploymentId);
        updated = {
          ...current,
          parametersJson: JSON.stringify(parameters),
          yaml: built.yaml,
          digest: built.digest,
          manifestVersion: nextVersion,
          updatedAt: at,
        };
        return { upserts: [updated], deletes: [] };
      });
      if (!updated) throw new WfmError("internal", "the desired-state change did not run");
      return toAdminDeployment(updated);
    },

    async deleteDeployment(deploymentId) {
      const rec = await liveDeployment(deploymentId);
      await commit(rec.clientId, (live) => {
        stillLive(live, deploymentId);
        return { upserts: [], deletes: [deploymentId] };
      });
    },

    async listDeployments(filter) {
      const query = {
        ...(filter?.clientId !== undefined ? { clientId: filter.clientId } : {}),
        ...(filter?.deviceId !== undefined ? { deviceId: filter.deviceId } : {}),
      };
      return (await store.listDeployments(query)).map(toAdminDeployment);
    },

    async listDevices(clientId) {
      return (await store.listDevices(clientId)).map(toAdminDevice);
    },

    async getDevice(clientId, deviceId) {
      const rec = await store.getDevice(clientId, deviceId);
      return rec ? toAdminDevice(rec) : undefined;
    },

    async listStatuses(filter) {
      const query = {
        ...(filter?.clientId !== undefined ? { clientId: filter.clientId } : {}),
        ...(filter?.deploymentId !== undefined ? { deploymentId: filter.deploymentId } : {}),
        ...(filter?.includeHistory ? { includeHistory: true } : {}),
      };
      return (await store.listStatuses(query)).map(toAdminStatus);
    },

    publishNextAuthority: (): Promise<admin.AuthorityStatus> => identity.publishNextAuthority(),
    activateNextAuthority: (force?: boolean): Promise<admin.AuthorityStatus> =>
      identity.activateNextAuthority(force),
    retirePreviousAuthorities: (): Promise<admin.AuthorityStatus> =>
      identity.retirePreviousAuthorities(),
    authorityStatus: async (): Promise<admin.AuthorityStatus> => identity.authorityStatus(),

    async reset() {
      // Versions never go back: every client that had deployments gets a new, empty manifest,
      // committed with the rest of the reset in one transaction (all or nothing on a crash).
      const committed = await store.resetAll((clientId) =>
        changeOf(clientId, (live) => ({ upserts: [], deletes: live.map((d) => d.deploymentId) })),
      );
      for (const m of committed) publish(m);
      descriptions.clear();
      componentNames.clear();
    },
  };

  return {
    ...southbound,
    ...northbound,
    async close() {
      watchers.clear();
    },
  };
}

/** A report's deviceId must be the target, or a child of the gateway a `gw/*` target names. */
function deviceMatches(target: string, reported: string): boolean {
  if (target.endsWith("/*")) return reported.startsWith(target.slice(0, -1));
  return reported === target;
}

/** components[] must name each component of the deployment exactly once (item 68). */
function componentErrors(
  deploymentId: string,
  expected: readonly string[],
  reported: string[],
): FieldError[] {
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  reported.forEach((name, i) => {
    if (!expected.includes(name))
      errors.push({
        field: `/components/${i}/name`,
        message: `${JSON.stringify(name)} is not a component of deployment ${deploymentId}`,
      });
    else if (seen.has(name))
      errors.push({
        field: `/components/${i}/name`,
        message: `${JSON.stringify(name)} is listed twice`,
      });
    seen.add(name);
  });
  const missing = expected.filter((n) => !seen.has(n));
  if (missing.length > 0)
    errors.push({
      field: "/components",
      message: `missing component(s) ${missing.map((n) => JSON.stringify(n)).join(", ")}`,
    });
  return errors;
}
