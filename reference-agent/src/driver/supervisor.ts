import { rm } from "node:fs/promises";
import { join } from "node:path";
import {
  anchorsFromBundleJson,
  CREDENTIAL_FILES,
  parseSpiffeId,
  pemToDer,
  readCertificate,
  wfmSpiffeId,
  writeFileAtomic,
} from "@margo/proto/identity/light";
import { DeploymentState } from "@margo/proto/model/deployment-status";
import type * as deviceDriver from "@margo/proto/services/device-driver";
import type { AgentView, RunningAgent, StartAgent } from "../agent-api.js";
import { type AgentConfig, CONFIG_FILE, saveConfig } from "../config.js";
import type { AgentLog } from "../log.js";
import { mutantFeatures } from "../mutants.js";
import { SqliteAgentStore } from "../state/sqlite-store.js";
import type { WireState } from "../state/store.js";

/** The Margo version this agent implements (DeviceDriver Info). */
export const MARGO_VERSION = "1.0.0-rc.3";
/** Version of the reference agent itself. */
export const AGENT_VERSION = "0.1.0";

/**
 * Why a DeviceDriver call was refused; the server maps `code` to the gRPC status so the suite can
 * tell its own mistake (invalid-argument) from a finding about the device (failed-precondition).
 */
export class SupervisorError extends Error {
  constructor(
    readonly code: "invalid-argument" | "failed-precondition" | "unavailable",
    message: string,
  ) {
    super(message);
    this.name = "SupervisorError";
  }
}

/** What the DeviceDriver service needs; AgentSupervisor is the real one, tests stub it. */
export interface DeviceDriverBackend {
  configure(req: deviceDriver.ConfigureRequest): Promise<void>;
  reset(): Promise<void>;
  state(): deviceDriver.GetStateResponse;
  info(): deviceDriver.InfoResponse;
}

/**
 * Owns the one RunningAgent of this process so the conformance suite can re-provision it at will
 * (DeviceDriver Configure stands in for the operator, digest 5.7): each Configure closes the
 * running agent, installs the new identity, forgets everything tied to the old WFM relationship
 * (manifest floor, deployments, outbox, trust) after removing its workloads, and starts afresh.
 * Calls are serialised: two overlapping Configures must not run two agents on one state dir.
 */
export class AgentSupervisor implements DeviceDriverBackend {
  private agent: RunningAgent | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private config: AgentConfig,
    private readonly startAgent: StartAgent,
    private readonly log: AgentLog,
  ) {}

  /** The running agent, if any (undefined before the first successful start). */
  current(): RunningAgent | undefined {
    return this.agent;
  }

  /** The config the agent runs (or would run) with. */
  currentConfig(): AgentConfig {
    return this.config;
  }

  /** Start the agent with the current config (at `margo-agent run`). */
  start(): Promise<void> {
    return this.serial(async () => {
      if (this.agent) return;
      this.agent = await this.startAgent(this.config, { log: this.log });
    });
  }

  configure(req: deviceDriver.ConfigureRequest): Promise<void> {
    return this.serial(async () => {
      const checked = checkConfigure(req);
      // Remove what the old relationship installed while that agent still knows it.
      if (this.agent) {
        const old = this.agent;
        try {
          await old.reset();
        } catch (e) {
          // The old agent keeps running: a refused Configure changes nothing.
          throw new SupervisorError(
            "unavailable",
            `cannot remove the current workloads, configuration unchanged: ${(e as Error).message}`,
          );
        }
        this.agent = undefined;
        await old.close();
      }
      const dir = this.config.identityDir;
      await writeFileAtomic(join(dir, CREDENTIAL_FILES.chain), req.clientSvidChainPem, 0o644);
      await writeFileAtomic(join(dir, CREDENTIAL_FILES.key), req.privateKeyPem, 0o600);
      // Only the form given stays: a stale bundle of the other form must not be read instead.
      if (checked.bundle.kind === "pem") {
        await writeFileAtomic(join(dir, CREDENTIAL_FILES.bundlePem), checked.bundle.text, 0o644);
        await rm(join(dir, CREDENTIAL_FILES.bundleJson), { force: true });
      } else {
        await writeFileAtomic(join(dir, CREDENTIAL_FILES.bundleJson), checked.bundle.text, 0o644);
        await rm(join(dir, CREDENTIAL_FILES.bundlePem), { force: true });
      }
      const next: AgentConfig = {
        ...this.config,
        deviceId: req.deviceId,
        wfm: { ...this.config.wfm, url: req.wfmUrl },
        // The suite names the bundle endpoint it serves; without one, no refresh (a stale URL
        // from an earlier Configure would point at a WFM that is gone).
        trust: withBundleUrl(this.config.trust, req.trustBundleUrl),
        polling: {
          ...this.config.polling,
          ...(req.pollPeriodMs > 0 ? { periodMs: req.pollPeriodMs } : {}),
        },
      };
      await saveConfig(next, join(next.stateDir, CONFIG_FILE));
      this.config = next;
      // Nothing of the old WFM may survive (a lower manifestVersion from a new WFM is legitimate).
      const store = SqliteAgentStore.open(next.stateDir);
      try {
        store.reset();
      } finally {
        store.close();
      }
      this.log({
        level: "info",
        msg: "configured by DeviceDriver",
        wfmUrl: req.wfmUrl,
        deviceId: req.deviceId,
        wfmId: checked.wfmId,
      });
      this.agent = await this.startAgent(next, { log: this.log });
    });
  }

  reset(): Promise<void> {
    return this.serial(async () => {
      if (this.agent) {
        await this.agent.reset();
        return;
      }
      // Not provisioned yet (waiting for Configure): no provider ran, only state can be left.
      const store = SqliteAgentStore.open(this.config.stateDir);
      try {
        store.reset();
      } finally {
        store.close();
      }
    });
  }

  state(): deviceDriver.GetStateResponse {
    const agent = this.agent;
    if (!agent) return { deployments: [], lastErrors: [] };
    return stateResponse(agent.view());
  }

  info(): deviceDriver.InfoResponse {
    const runtimes = this.agent?.view().runtimes ?? [];
    return {
      vendor: "margo-reference",
      product: "reference-agent",
      version: AGENT_VERSION,
      margoVersion: MARGO_VERSION,
      supportedDeploymentTypes: runtimes.filter((r) => r.available).map((r) => r.type),
      // InfoResponse has no features field; the harness reports deployment types and runtimes as
      // the device's features, so a test-only mutant names itself here (`mutant:<name>`).
      supportedRuntimes: ["oci", ...mutantFeatures()],
    };
  }

  /** Close the agent (process shutdown). */
  close(): Promise<void> {
    return this.serial(async () => {
      const a = this.agent;
      this.agent = undefined;
      await a?.close();
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

interface CheckedConfigure {
  wfmId: string;
  bundle: { kind: "pem" | "json"; text: string };
}

function withBundleUrl(trust: AgentConfig["trust"], url: string | undefined): AgentConfig["trust"] {
  const { bundleUrl: _b, discoveryUrl: _d, ...rest } = trust;
  return url ? { ...rest, bundleUrl: url } : rest;
}

/**
 * Validate a Configure before anything is torn down: a bad request must leave the running agent
 * as it was. The WFM id the device derives from its own SVID must equal the suite's expectation
 * (item 8); a mismatch is reported naming both.
 */
export function checkConfigure(req: deviceDriver.ConfigureRequest): CheckedConfigure {
  const invalid = (m: string) => new SupervisorError("invalid-argument", m);
  let url: URL;
  try {
    url = new URL(req.wfmUrl);
  } catch {
    throw invalid(`wfm_url is not a URL: ${JSON.stringify(req.wfmUrl)}`);
  }
  if (url.protocol !== "https:") throw invalid("wfm_url must be https (mTLS)");
  if (req.trustBundleUrl !== undefined && !req.trustBundleUrl.startsWith("https://")) {
    throw invalid("trust_bundle_url must be https (item 19)");
  }
  if (!/^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(req.deviceId)) {
    throw invalid(`device_id ${JSON.stringify(req.deviceId)} is not a device id`);
  }
  if (!req.privateKeyPem.includes("PRIVATE KEY-----")) throw invalid("private_key_pem is empty");
  let derived: string;
  try {
    const leaf = pemToDer(req.clientSvidChainPem)[0];
    if (!leaf) throw new Error("no certificate");
    const uri = readCertificate(leaf).uris.find((u) => u.startsWith("spiffe://"));
    if (!uri) throw new Error("the leaf has no SPIFFE ID");
    const id = parseSpiffeId(uri);
    const [m, w, wfmId, c] = id.segments;
    if (m !== "margo" || w !== "wfm" || !wfmId || c !== "client" || id.segments.length !== 5) {
      throw new Error(`${uri} is not a MIAF client ID (spiffe://<td>/margo/wfm/<wfm>/client/<id>)`);
    }
    derived = wfmSpiffeId(id.trustDomain, wfmId);
  } catch (e) {
    throw invalid(`client_svid_chain_pem: ${(e as Error).message}`);
  }
  if (req.expectedWfmSpiffeId !== derived) {
    throw new SupervisorError(
      "failed-precondition",
      `the SVID names WFM ${derived}, the request expects ${req.expectedWfmSpiffeId}`,
    );
  }
  let bundle: CheckedConfigure["bundle"];
  const tb = req.trustBundle;
  if (tb?.$case === "trustBundlePem") {
    if (pemToDer(tb.value).length === 0) throw invalid("trust_bundle_pem holds no certificate");
    bundle = { kind: "pem", text: tb.value };
  } else if (tb?.$case === "spiffeBundleJson") {
    try {
      if (anchorsFromBundleJson(tb.value).anchors.length === 0) {
        throw new Error("no x509-svid anchor");
      }
    } catch (e) {
      throw invalid(`spiffe_bundle_json: ${(e as Error).message}`);
    }
    bundle = { kind: "json", text: tb.value };
  } else {
    throw invalid("a trust bundle (trust_bundle_pem or spiffe_bundle_json) is required (item 18)");
  }
  return { wfmId: derived, bundle };
}

const STATE_VALUE: Record<WireState, DeploymentState> = {
  pending: DeploymentState.DEPLOYMENT_STATE_PENDING,
  installing: DeploymentState.DEPLOYMENT_STATE_INSTALLING,
  installed: DeploymentState.DEPLOYMENT_STATE_INSTALLED,
  failed: DeploymentState.DEPLOYMENT_STATE_FAILED,
  removing: DeploymentState.DEPLOYMENT_STATE_REMOVING,
  removed: DeploymentState.DEPLOYMENT_STATE_REMOVED,
};

/** Map the agent's view to GetState: each deployment as the status it would report now. */
export function stateResponse(view: AgentView): deviceDriver.GetStateResponse {
  return {
    ...(view.manifestVersion !== undefined ? { manifestVersion: view.manifestVersion } : {}),
    ...(view.etag !== undefined ? { etag: view.etag } : {}),
    deployments: view.deployments.map((d) => ({
      deploymentId: d.deploymentId,
      digest: d.digest,
      status: {
        deploymentId: d.deploymentId,
        adoptedManifestVersion: d.adoptedManifestVersion,
        status: {
          state: STATE_VALUE[d.state],
          ...(d.error ? { error: { ...d.error } } : {}),
        },
        components: d.components.map((c) => ({
          name: c.name,
          state: STATE_VALUE[c.state],
          ...(c.error
            ? { error: { code: c.error.code, source: c.name, message: c.error.message } }
            : {}),
        })),
      },
    })),
    lastErrors: view.lastErrors.map((e) => ({
      at: new Date(e.at),
      kind: e.kind,
      message: e.message,
    })),
  };
}
