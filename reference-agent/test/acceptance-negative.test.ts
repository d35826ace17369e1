import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "./support/agent-process.js";
import { cleanupDevices, deploymentContainers, waitRunning, waitUntil } from "./support/docker.js";
import {
  composeSingleYaml,
  type HostileWfm,
  sha256,
  startHostileWfm,
} from "./support/hostile-wfm.js";

/**
 * Acceptance 6 (items 51-53, 8, 21): a hostile WFM on real mTLS serves one good manifest (the
 * workload installs on the real Docker Engine), then lies in every way rc.3 says a device must
 * refuse. Each lie must be rejected with its reason logged (stderr JSON `kind`) and recorded
 * (`margo-agent status --json` lastErrors), and the running workload must stay exactly as it was.
 */

const DEVICE = "acc-neg-dev";
const GOOD_VERSION = 10n;

let hostile: HostileWfm;
let agent: AgentProcess;
const good = { deploymentId: randomUUID(), yaml: "" };
let containerId: string;

/** The kinds the agent records (store.ts ErrorRecord.kind). */
async function rejected(kind: string): Promise<void> {
  await agent.waitForLog(kind, (e) => e.kind === kind, 20_000);
  const status = await agent.status();
  expect(status.lastErrors.map((e) => e.kind)).toContain(kind);
  expect(status.manifestVersion).toBe(GOOD_VERSION.toString());
}

async function workloadUntouched(): Promise<void> {
  const now = await deploymentContainers(good.deploymentId);
  expect(now.map((c) => [c.id, c.state])).toEqual([[containerId, "running"]]);
  const status = await agent.status();
  const d = status.deployments.find((x) => x.deploymentId === good.deploymentId);
  expect(d?.state).toBe("installed");
}

beforeAll(async () => {
  hostile = await startHostileWfm({ clientId: "acc-neg" });
  good.yaml = composeSingleYaml(good.deploymentId, DEVICE);
  hostile.setManifest(GOOD_VERSION, [good]);
  agent = await startAgent({
    wfm: { managementUrl: hostile.managementUrl, bundleUrl: hostile.bundleUrl },
    deviceId: DEVICE,
    identityDir: hostile.identityDir,
    watch: false,
    pollMs: 200,
    configure: (c) => {
      c.trust.refreshIntervalSeconds = 1;
    },
  });
  const [c] = await waitRunning(good.deploymentId, 1, 45_000);
  containerId = c?.id as string;
  await waitUntil("installed reported to the hostile WFM", () =>
    hostile.statuses().some((s) => (s.body.status as { state?: string })?.state === "installed"),
  );
}, 120_000);

afterAll(async () => {
  await agent?.dispose();
  await hostile?.close();
  await cleanupDevices([DEVICE]);
}, 60_000);

describe("acceptance: a hostile WFM is refused, the workload stays", () => {
  it("item 51: a lower manifestVersion (dropping the deployment) is rejected", async () => {
    hostile.setManifest(GOOD_VERSION - 1n, []);
    await rejected("manifest-version-regressed");
    await workloadUntouched();
  });

  it("item 52: a tampered digest aborts the whole update", async () => {
    const extra = { deploymentId: randomUUID(), yaml: "" };
    extra.yaml = composeSingleYaml(extra.deploymentId, DEVICE);
    // The manifest names the true digest of extra, but other bytes are served at its url.
    hostile.setManifest(GOOD_VERSION + 1n, [
      good,
      { ...extra, servedYaml: extra.yaml.replace("revision: 1.0.0", "revision: 6.6.6") },
    ]);
    await rejected("digest-mismatch");
    await workloadUntouched();
    expect(await deploymentContainers(extra.deploymentId)).toEqual([]);
  });

  it("item 53: a digest algorithm other than sha256 is rejected", async () => {
    const extra = { deploymentId: randomUUID(), yaml: "" };
    extra.yaml = composeSingleYaml(extra.deploymentId, DEVICE);
    hostile.setManifest(GOOD_VERSION + 2n, [
      good,
      { ...extra, digest: `sha512:${"ab".repeat(64)}` },
    ]);
    await rejected("unsupported-digest-algorithm");
    await workloadUntouched();
    expect(await deploymentContainers(extra.deploymentId)).toEqual([]);
  });

  it("item 8: a server with another SPIFFE ID of the same trust domain is refused", async () => {
    // Were the agent to accept this server, the higher version without deployments would remove the workload.
    hostile.setManifest(GOOD_VERSION + 3n, []);
    hostile.presentIdentity("other");
    await rejected("wfm-identity-mismatch");
    const polls = hostile.manifestPolls();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(hostile.manifestPolls()).toBe(polls);
    await workloadUntouched();
    hostile.setManifest(GOOD_VERSION, [good]);
    hostile.presentIdentity("wfm");
  });

  it("item 21: an empty trust bundle is rejected and the old anchors stay in use", async () => {
    hostile.serveBundle("empty");
    await rejected("trust-bundle-empty");
    // Still connected with the old anchors: a new (valid) manifest version is taken up.
    hostile.setManifest(GOOD_VERSION + 5n, [good]);
    await waitUntil("the agent to accept the next manifest", async () => {
      const s = await agent.status();
      return s.manifestVersion === (GOOD_VERSION + 5n).toString();
    });
    const status = await agent.status();
    expect(status.trust).toMatchObject({ anchors: 1 });
    await workloadUntouched();
    hostile.serveBundle("good");
  });

  it("the deployment digest the agent holds is still the good one", async () => {
    const status = await agent.status();
    const d = status.deployments.find((x) => x.deploymentId === good.deploymentId) as
      | { digest?: string }
      | undefined;
    expect(d?.digest).toBe(sha256(good.yaml));
  });
});
