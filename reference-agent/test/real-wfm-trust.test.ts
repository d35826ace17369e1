import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCredentials } from "@margo/proto/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestWfm, type TestWfm } from "../../reference-wfm/test/support/start-wfm.js";
import { FileAgentIdentity } from "../src/identity/agent-identity.js";
import { BundleRefresher } from "../src/identity/bundle-refresher.js";
import { silentLog } from "../src/log.js";
import { RestWfmClient } from "../src/wfm/rest-client.js";
import { MemoryTrustStore, testAgentConfig } from "./support/trust-pki.js";

/**
 * The agent's identity, refresher and REST transport against the real reference WFM through a
 * whole CA rotation (digest 5.6): publish (bundle grows), activate (WFM SVID from the new root),
 * client SVID renewed, retire (bundle shrinks). The agent keeps talking to the WFM throughout,
 * and each refresh replaces the anchors with exactly what the MIS serves (item 22).
 */
describe("identity and trust against the real reference WFM (items 17-23)", () => {
  let wfm: TestWfm;
  let identityDir: string;

  beforeAll(async () => {
    wfm = await startTestWfm({ config: { trustPublicUrl: "https://127.0.0.1:0" } });
    identityDir = await mkdtemp(join(tmpdir(), "margo-t-rotation-"));
    await writeCredentials(identityDir, await wfm.admit("dev-rot"));
  });
  afterAll(async () => {
    await wfm?.dispose();
    await rm(identityDir, { recursive: true, force: true });
  });

  it("discovery, refresh and mTLS keep working through publish, activate, SVID renewal and retire", async () => {
    const store = new MemoryTrustStore();
    const config = testAgentConfig(identityDir, {
      wfm: { url: `https://127.0.0.1:${wfm.managementPort}`, watch: false },
      trust: {
        discoveryUrl: `https://127.0.0.1:${wfm.trustPort}/.well-known/margo`,
        refreshIntervalSeconds: 300,
      },
    });
    const identity = await FileAgentIdentity.open(config, store.asStore(), silentLog);
    const refresher = new BundleRefresher(config, identity, store.asStore(), silentLog);
    const rest = new RestWfmClient(config.wfm.url, identity);
    try {
      expect(await refresher.refreshNow()).toEqual({ result: "unchanged" });
      expect((await rest.getManifest()).status).toBe(200);
      const original = identity.trustState().fingerprints;

      await wfm.core.publishNextAuthority();
      const grown = await refresher.refreshNow();
      expect(grown.result === "accepted" && grown.anchors).toBe(2);
      expect(identity.trustState().fingerprints).toEqual(expect.arrayContaining(original));

      await wfm.core.activateNextAuthority(true);
      // The WFM now presents an SVID from the new root; the agent accepts it via the new anchor.
      expect((await rest.getManifest()).status).toBe(200);

      await writeCredentials(identityDir, await wfm.core.issueClientCredentials("dev-rot"));
      await identity.reloadSvid();
      expect((await rest.getManifest()).status).toBe(200);

      await wfm.core.retirePreviousAuthorities();
      const shrunk = await refresher.refreshNow();
      expect(shrunk.result === "accepted" && shrunk.anchors).toBe(1);
      // Replaced, not merged: the retired root is gone from what the agent trusts.
      expect(identity.trustState().fingerprints.some((f) => original.includes(f))).toBe(false);
      expect((await rest.getManifest()).status).toBe(200);
      expect(store.trust?.sequence).toBe(identity.trustState().sequence);
    } finally {
      rest.close();
      refresher.stop();
    }
  });
});
