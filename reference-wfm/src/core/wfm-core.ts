import { randomUUID } from "node:crypto";
import type { admin } from "@margo/proto";
import { decodeApplicationDeployment } from "@margo/proto/wire";
import type { WfmIdentity } from "../identity/types.js";
import type { DeploymentRecord, ManifestRecord, WfmStore } from "../store/store.js";
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

  async function commit(clientId: string, mutate: Mutation): Promise<ManifestRecord> {
    const record = await store.commitDesiredState(clientId, ({ deployments, nextVersion }) => {
      const { upserts, deletes } = mutate(deployments, nextVersion);
      const live = new Map(deployments.map((d) => [d.deploymentId, d]));
      for (const id of deletes) live.delete(id);
      for (const u of upserts) live.set(u.deploymentId, u);
      return {
        upserts,
        deletes,
        manifest: buildManifest(clientId, [...live.values()], nextVersion),
      };
    });
    publish(record);
    return record;
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
      readCapabilities(deviceId, body);
      const slash = deviceId.indexOf("/");
      if (slash > 0) {
        // The gateway is the first segment; intermediate path segments need not be devices
        // (digest 8: gateway1/path1/deviceA).
        const gateway = deviceId.slice(0, slash);
        if (!(await store.getDevice(clientId, gateway)))
          throw new WfmError(
            "gateway-not-found",
            `gateway ${JSON.stringify(gateway)} has not reported its capabilities yet`,
          );
      }
      return store.putDevice({
        clientId,
        deviceId,
        capabilities: Buffer.from(body),
        receivedAt: now(),
      });
    },

    async deleteCapabilities(clientId, deviceId) {
      if (!(await store.getDevice(clientId, deviceId)))
        throw new WfmError(
          "device-not-found",
          `device ${JSON.stringify(deviceId)} is not registered`,
        );
      // A gateway takes its children with it: a child without its gateway would break the
      // item-27 invariant, and the OpenAPI offers DELETE no 409 to refuse with.
      const children = (await store.listDevices(clientId))
        .filter((d) => d.deviceId.startsWith(`${deviceId}/`))
        .sort((a, b) => b.deviceId.length - a.deviceId.length);
      for (const child of children) await store.deleteDevice(clientId, child.deviceId);
      await store.deleteDevice(clientId, deviceId);
    },

    async manifest(clientId) {
      const cached = manifests.get(clientId);
      if (cached) return snapshotOf(cached);
      if (!accepted.has(clientId))
        throw new WfmError("not-authorized", `client ${JSON.stringify(clientId)} is not accepted`);
      return snapshotOf(await commit(clientId, () => ({ upserts: [], deletes: [] })));
    },

    async deploymentYaml(clientId, deploymentId, digest) {
      const rec = await store.getDeployment(deploymentId);
      if (!rec || rec.clientId !== clientId || rec.deletedAt || rec.digest !== digest)
        throw new WfmError(
          "deployment-not-found",
          `no deployment ${JSON.stringify(deploymentId)} with digest ${digest}`,
        );
      return rec.yaml;
    },

    async bundle(clientId, digest) {
      const b = manifests.get(clientId)?.bundle;
      if (!b || b.digest !== digest)
        throw new WfmError("invalid-bundle", `no bundle with digest ${digest}`);
      return b.bytes;
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
          rec,
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

    async createDeployment(input: CreateDeploymentInput) {
      requireAdmitted(input.clientId);
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
      };
      return (await store.listStatuses(query)).map(toAdminStatus);
    },

    rotateAuthority: (): Promise<admin.RotateAuthorityResponse> => identity.rotateAuthority(),
    retirePreviousAuthorities: (): Promise<admin.RetirePreviousAuthoritiesResponse> =>
      identity.retirePreviousAuthorities(),

    async reset() {
      // Versions never go back: every client that had deployments gets a new, empty manifest.
      for (const [clientId, m] of [...manifests]) {
        if (!m.bundle) continue;
        await commit(clientId, (live) => ({
          upserts: [],
          deletes: live.map((d) => d.deploymentId),
        }));
      }
      await store.resetData();
      descriptions.clear();
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
function componentErrors(rec: DeploymentRecord, reported: string[]): FieldError[] {
  const decoded = decodeApplicationDeployment(rec.yaml);
  const expected = decoded.value?.spec?.deploymentProfile?.components.map((c) => c.name) ?? [];
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  reported.forEach((name, i) => {
    if (!expected.includes(name))
      errors.push({
        field: `/components/${i}/name`,
        message: `${JSON.stringify(name)} is not a component of deployment ${rec.deploymentId}`,
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
