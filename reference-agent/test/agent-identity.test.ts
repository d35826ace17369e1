import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRootCa, encodeAnchorsBundle, mintSvid } from "@margo/proto/identity";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FileAgentIdentity, IdentitySetupError } from "../src/identity/agent-identity.js";
import { silentLog } from "../src/log.js";
import {
  CLIENT_ID,
  issuerOf,
  MemoryTrustStore,
  makeDomain,
  TD,
  type TestDomain,
  testAgentConfig,
  WFM_ID,
} from "./support/trust-pki.js";

const domains: TestDomain[] = [];
afterEach(async () => {
  await Promise.all(domains.splice(0).map((d) => d.cleanup()));
});

async function domainWith(opts: Parameters<typeof makeDomain>[0]) {
  const d = await makeDomain(opts);
  domains.push(d);
  return d;
}

async function setupError(p: Promise<unknown>): Promise<IdentitySetupError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(IdentitySetupError);
  return e as IdentitySetupError;
}

describe("FileAgentIdentity", () => {
  it("item 8: derives the client ID, trust domain and the only accepted WFM ID from the own SVID", async () => {
    const d = await domainWith({ bundle: "json" });
    const id = await FileAgentIdentity.open(
      testAgentConfig(d.identityDir),
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    expect(id.clientSpiffeId).toBe(CLIENT_ID);
    expect(id.trustDomain).toBe(TD);
    expect(id.expectedWfmId).toBe(WFM_ID);
    expect(id.tls().certChainPem).toBe(d.client.certPem);
    expect(id.tls().anchorsPem).toBe(d.root.certPem);
  });

  it("item 18: refuses to start with neither bundle.json nor bundle.pem (no trust on first use)", async () => {
    const d = await domainWith({ bundle: "none" });
    const e = await setupError(
      FileAgentIdentity.open(
        testAgentConfig(d.identityDir),
        new MemoryTrustStore().asStore(),
        silentLog,
      ),
    );
    expect(e.reason).toBe("bundle-missing");
  });

  it("item 21: refuses a provisioned bundle with no X.509 anchor", async () => {
    const d = await domainWith({ bundle: "none" });
    await writeFile(join(d.identityDir, "bundle.json"), '{"keys":[]}');
    const e = await setupError(
      FileAgentIdentity.open(
        testAgentConfig(d.identityDir),
        new MemoryTrustStore().asStore(),
        silentLog,
      ),
    );
    expect(e.reason).toBe("bundle-invalid");
  });

  it("accepts bundle.pem alone and saves it to the store as a SPIFFE bundle", async () => {
    const d = await domainWith({ bundle: "pem" });
    const store = new MemoryTrustStore();
    const id = await FileAgentIdentity.open(
      testAgentConfig(d.identityDir),
      store.asStore(),
      silentLog,
    );
    id.verifyServer([(await d.serverSvid(WFM_ID)).certDer]);
    expect(JSON.parse(Buffer.from(store.trust?.bundleJson ?? []).toString()).keys).toHaveLength(1);
  });

  it("refuses an SVID that is not a MIAF client ID (a WFM SVID installed by mistake)", async () => {
    const d = await domainWith({ bundle: "json" });
    const wrong = await d.serverSvid(WFM_ID);
    await writeFile(join(d.identityDir, "svid.pem"), wrong.certPem);
    const e = await setupError(
      FileAgentIdentity.open(
        testAgentConfig(d.identityDir),
        new MemoryTrustStore().asStore(),
        silentLog,
      ),
    );
    expect(e.reason).toBe("svid-not-miaf-client");
  });

  it("refuses a missing key", async () => {
    const d = await domainWith({ bundle: "json" });
    await rm(join(d.identityDir, "svid.key"));
    const e = await setupError(
      FileAgentIdentity.open(
        testAgentConfig(d.identityDir),
        new MemoryTrustStore().asStore(),
        silentLog,
      ),
    );
    expect(e.reason).toBe("key-missing");
  });

  it("a refreshed bundle in the store wins over the provisioned one after a restart", async () => {
    const d = await domainWith({ bundle: "json" });
    const rootB = await createRootCa({ trustDomain: TD, commonName: "B" });
    const store = new MemoryTrustStore();
    const config = testAgentConfig(d.identityDir);
    const first = await FileAgentIdentity.open(config, store.asStore(), silentLog);
    first.replaceBundle(encodeAnchorsBundle([rootB.certDer], { sequence: 4n }), { sequence: 4n });
    const again = await FileAgentIdentity.open(config, store.asStore(), silentLog);
    expect(again.trustState().sequence).toBe(4n);
    const wfmB = await mintSvid({ issuer: issuerOf(rootB), spiffeId: WFM_ID });
    again.verifyServer([wfmB.certDer]);
    const wfmA = await d.serverSvid(WFM_ID);
    expect(() => again.verifyServer([wfmA.certDer])).toThrow(/does not chain/);
  });

  it("verifyServer with an explicit expected ID accepts that ID only", async () => {
    const d = await domainWith({ bundle: "json" });
    const id = await FileAgentIdentity.open(
      testAgentConfig(d.identityDir),
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    const mis = await d.serverSvid(`spiffe://${TD}/margo/mis`);
    id.verifyServer([mis.certDer], `spiffe://${TD}/margo/mis`);
    expect(() => id.verifyServer([mis.certDer])).toThrow(
      /only spiffe:\/\/example.org\/margo\/wfm\/wfm-1/,
    );
  });

  it("reloadSvid picks up a renewed SVID with the same ID and fires onChange; a different ID is refused", async () => {
    const d = await domainWith({ bundle: "json" });
    const id = await FileAgentIdentity.open(
      testAgentConfig(d.identityDir),
      new MemoryTrustStore().asStore(),
      silentLog,
    );
    const changed = vi.fn();
    id.onChange(changed);
    const renewed = await mintSvid({ issuer: issuerOf(d.root), spiffeId: CLIENT_ID });
    await writeFile(join(d.identityDir, "svid.pem"), renewed.certPem);
    await writeFile(join(d.identityDir, "svid.key"), renewed.keyPem);
    await id.reloadSvid();
    expect(id.tls().certChainPem).toBe(renewed.certPem);
    expect(changed).toHaveBeenCalledTimes(1);
    const other = await mintSvid({
      issuer: issuerOf(d.root),
      spiffeId: `spiffe://${TD}/margo/wfm/wfm-1/client/dev-2`,
    });
    await writeFile(join(d.identityDir, "svid.pem"), other.certPem);
    await expect(id.reloadSvid()).rejects.toBeInstanceOf(IdentitySetupError);
    expect(id.tls().certChainPem).toBe(renewed.certPem);
  });
});
