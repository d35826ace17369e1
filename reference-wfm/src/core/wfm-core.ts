import type { OciClient } from "@margo/proto/oci";
import type { WfmIdentity } from "../identity/types.js";
import type { WfmStore } from "../store/store.js";
import type { Northbound, Southbound } from "./api.js";
import { WfmError } from "./errors.js";

/** Builds the OCI client used to pull one registry's packages; tests inject counting wrappers. */
export type RegistryFactory = (registry: string, plainHttp: boolean) => OciClient;

/** What the core needs from the outside; everything else it derives. */
export interface WfmCoreDeps {
  store: WfmStore;
  identity: WfmIdentity;
  /** Injected so tests can pin timestamps; defaults to the wall clock. */
  clock?: () => Date;
  registry?: RegistryFactory;
}

/** The WFM's domain: what every edge (REST, gRPC, CLI) calls. */
export type WfmCore = Southbound & Northbound & { close(): Promise<void> };

/**
 * Loads caches (accepted clients, current manifests) from the store and returns the core.
 * Skeleton: every operation is wired in follow-up commits.
 */
export async function createWfmCore(deps: WfmCoreDeps): Promise<WfmCore> {
  void deps;
  const todo = (): never => {
    throw new WfmError("internal", "not implemented yet");
  };
  return {
    isAccepted: () => false,
    putCapabilities: async () => todo(),
    deleteCapabilities: async () => todo(),
    manifest: async () => todo(),
    deploymentYaml: async () => todo(),
    bundle: async () => todo(),
    reportStatus: async () => todo(),
    watch: () => () => {},
    addClient: async () => todo(),
    removeClient: async () => todo(),
    listClients: async () => todo(),
    issueClientCredentials: async () => todo(),
    registerApplication: async () => todo(),
    listApplications: async () => todo(),
    getApplication: async () => todo(),
    createDeployment: async () => todo(),
    updateDeployment: async () => todo(),
    deleteDeployment: async () => todo(),
    listDeployments: async () => todo(),
    listDevices: async () => todo(),
    getDevice: async () => todo(),
    listStatuses: async () => todo(),
    rotateAuthority: async () => todo(),
    retirePreviousAuthorities: async () => todo(),
    reset: async () => todo(),
    close: async () => {},
  };
}
