import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { admin } from "@margo/proto";
import { createWfmCore, type RegistryFactory, type WfmCore } from "../../src/core/wfm-core.js";
import type { ServedDocument, TlsMaterial, WfmIdentity } from "../../src/identity/types.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { ApplicationRecord } from "../../src/store/store.js";

/**
 * Test support for the core, kept out of src/ so nothing shipped can import it: a fake identity
 * (the one boundary unit tests may fake; minting real SVIDs is the identity module's job and is
 * tested there) and a core over a REAL SqliteStore on a temporary file, reopenable to prove
 * durability.
 */

/** A fixed AuthorityStatus: the core only passes rotation results through. */
function fakeStatus(spiffeSequence: bigint, anchorFingerprints: string[]): admin.AuthorityStatus {
  return { spiffeSequence, anchorFingerprints, anchors: [], refreshHintSeconds: 300 };
}

/** A WfmIdentity that records what it was asked to mint; TLS material is never used here. */
export class FakeIdentity implements WfmIdentity {
  readonly trustDomain = "core.test";
  readonly wfmId = "wfm-1";
  readonly wfmSpiffeId = "spiffe://core.test/margo/wfm/wfm-1";
  readonly minted: Array<{ clientId: string; lifetimeSeconds: number | undefined }> = [];
  rotations = 0;
  /** The `force` of each activation asked for. */
  readonly activations: boolean[] = [];
  retirements = 0;

  serverTls(): TlsMaterial {
    throw new Error("not used by the core");
  }
  verifyClient(): never {
    throw new Error("not used by the core");
  }
  verifyOperator(): never {
    throw new Error("not used by the core");
  }
  discoveryDocument(): ServedDocument {
    throw new Error("not used by the core");
  }
  spiffeBundle(): ServedDocument {
    throw new Error("not used by the core");
  }
  async mintClient(clientId: string, lifetimeSeconds?: number): Promise<admin.ClientCredentials> {
    this.minted.push({ clientId, lifetimeSeconds });
    return {
      spiffeId: `${this.wfmSpiffeId}/client/${clientId}`,
      certificateChainPem: `chain-of-${clientId}`,
      privateKeyPem: `key-of-${clientId}`,
      trustBundlePem: "bundle",
      spiffeBundleJson: Buffer.from("{}"),
      notAfter: new Date(Date.UTC(2030, 0, 1)),
    };
  }
  mintOperator(name: string): Promise<admin.ClientCredentials> {
    return this.mintClient(`operator-${name}`);
  }
  async publishNextAuthority(): Promise<admin.AuthorityStatus> {
    this.rotations++;
    return fakeStatus(2n, ["old", "new"]);
  }
  async activateNextAuthority(force?: boolean): Promise<admin.AuthorityStatus> {
    this.activations.push(force === true);
    return fakeStatus(2n, ["new", "old"]);
  }
  async retirePreviousAuthorities(): Promise<admin.AuthorityStatus> {
    this.retirements++;
    return fakeStatus(3n, ["new"]);
  }
  authorityStatus(): admin.AuthorityStatus {
    return fakeStatus(3n, ["new"]);
  }
  onChange(): () => void {
    return () => {};
  }
}

/** The repository's fixtures folder (fixtures/apps/<name>). */
export const FIXTURE_APPS = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "fixtures",
  "apps",
);

export async function fixtureDescription(app: string): Promise<Buffer> {
  return readFile(join(FIXTURE_APPS, app, "margo.yaml"));
}

export interface CoreHarness {
  core: WfmCore;
  store: SqliteStore;
  identity: FakeIdentity;
  dir: string;
  /** Closes core and store and opens both again on the same file (a clean restart). */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function openCore(
  opts: { registry?: RegistryFactory; clock?: () => Date } = {},
): Promise<CoreHarness> {
  const dir = await mkdtemp(join(tmpdir(), "wfm-core-"));
  const path = join(dir, "wfm.sqlite");
  const identity = new FakeIdentity();
  const open = async () => {
    const store = await SqliteStore.open(path);
    const core = await createWfmCore({ store, identity, ...opts });
    return { store, core };
  };
  const h: CoreHarness = {
    ...(await open()),
    identity,
    dir,
    async restart() {
      await h.core.close();
      await h.store.close();
      Object.assign(h, await open());
    },
    async cleanup() {
      await h.core.close();
      await h.store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** Puts a description straight into the catalog (registration itself is tested against a registry). */
export async function catalogApp(
  h: CoreHarness,
  descriptionYaml: Buffer,
  version: string,
  applicationId: string,
): Promise<ApplicationRecord> {
  return h.store.putApplication({
    applicationId,
    version,
    ociReference: `127.0.0.1:5000/test/${applicationId}/package:${version}`,
    manifestDigest: `sha256:${"0".repeat(64)}`,
    descriptionYaml,
    registeredAt: new Date(),
  });
}

/** A valid hosting-device capabilities body for `id`, with optional overrides of properties. */
export function capabilitiesBody(
  id: string,
  extra: Record<string, unknown> = {},
  root: Record<string, unknown> = {},
): Buffer {
  return Buffer.from(
    JSON.stringify({
      properties: {
        id,
        vendor: "Acme",
        modelNumber: "M1",
        serialNumber: "S1",
        cpus: [{ cores: 2, architecture: "amd64" }],
        memory: "4Gi",
        storage: "32Gi",
        interfaces: [{ type: "ethernet" }],
        otelCollector: true,
        supportedRuntimes: ["oci"],
        supportedDeploymentTypes: ["compose"],
        ...extra,
      },
      ...root,
    }),
  );
}

/** A status body; `components` are names, all in `state`. */
export function statusBody(
  deploymentId: string,
  adoptedManifestVersion: bigint | number,
  state: string,
  components: string[],
  extra: Record<string, unknown> = {},
): Buffer {
  return Buffer.from(
    JSON.stringify({
      deploymentId,
      adoptedManifestVersion: Number(adoptedManifestVersion),
      status: { state },
      components: components.map((name) => ({ name, state })),
      ...extra,
    }),
  );
}
