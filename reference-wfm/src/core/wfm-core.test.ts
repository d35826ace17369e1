import { createHash } from "node:crypto";
import { readTarGz } from "@margo/proto/package";
import {
  decodeApplicationDeployment,
  decodeStateManifest,
  encodeStateManifest,
} from "@margo/proto/wire";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CoreHarness,
  capabilitiesBody,
  catalogApp,
  fixtureDescription,
  openCore,
  statusBody,
} from "../../test/support/core.js";
import type { WfmError } from "./errors.js";
import { isWfmError } from "./errors.js";

const APP = "compose-multi";
const VERSION = "2.1.0";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function caught(p: Promise<unknown>): Promise<WfmError> {
  try {
    await p;
  } catch (err) {
    if (isWfmError(err)) return err;
    throw err;
  }
  throw new Error("expected a WfmError, the call succeeded");
}

function manifestOf(body: Buffer) {
  const d = decodeStateManifest(body);
  if (!d.value) throw new Error(`manifest does not decode: ${JSON.stringify(d.problems)}`);
  return d.value;
}

let h: CoreHarness;

beforeEach(async () => {
  h = await openCore();
  await catalogApp(h, await fixtureDescription(APP), VERSION, APP);
  await h.core.addClient("alpha");
});
afterEach(async () => {
  await h.cleanup();
});

async function deploy(clientId = "alpha", deviceId = "dev1", parameters?: Record<string, unknown>) {
  return h.core.createDeployment({
    applicationId: APP,
    clientId,
    deviceId,
    ...(parameters ? { parameters } : {}),
  });
}

describe("clients", () => {
  it("item 42: a new client's first manifest is version 1 with no deployments and bundle null (item 43)", async () => {
    expect(h.core.isAccepted("alpha")).toBe(true);
    expect(h.identity.minted.map((m) => m.clientId)).toEqual(["alpha"]);
    const snap = await h.core.manifest("alpha");
    expect(snap.manifestVersion).toBe(1n);
    expect(JSON.parse(snap.body.toString())).toEqual({
      manifestVersion: 1,
      bundle: null,
      deployments: [],
    });
  });

  it("refuses a second admission (conflict) and ids MIAF forbids (item 16)", async () => {
    expect((await caught(h.core.addClient("alpha"))).kind).toBe("conflict");
    for (const bad of ["", ".", "..", "a/b", "a b", "é"]) {
      const err = await caught(h.core.addClient(bad));
      expect(err.kind).toBe("semantic-error");
      expect(err.errors[0]?.field).toBe("/clientId");
    }
    expect(h.core.isAccepted("a/b")).toBe(false);
  });

  it("item 7: a removed client is no longer accepted; re-admission continues its version sequence", async () => {
    await deploy();
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(2n);
    await h.core.removeClient("alpha");
    expect(h.core.isAccepted("alpha")).toBe(false);
    expect(await h.core.listClients()).toEqual([]);
    expect((await caught(h.core.issueClientCredentials("alpha"))).kind).toBe("not-found");
    await h.restart();
    expect(h.core.isAccepted("alpha")).toBe(false);
    await h.core.addClient("alpha");
    expect(h.core.isAccepted("alpha")).toBe(true);
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(2n);
    await deploy();
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(3n);
  });

  it("issues credentials only for admitted clients and delegates rotation to identity", async () => {
    const creds = await h.core.issueClientCredentials("alpha", 3600);
    expect(creds.spiffeId).toBe("spiffe://core.test/margo/wfm/wfm-1/client/alpha");
    expect(h.identity.minted.at(-1)).toEqual({ clientId: "alpha", lifetimeSeconds: 3600 });
    expect((await caught(h.core.issueClientCredentials("nobody"))).kind).toBe("not-found");
    expect((await h.core.publishNextAuthority()).anchorFingerprints).toEqual(["old", "new"]);
    expect((await h.core.activateNextAuthority(true)).anchorFingerprints).toEqual(["new", "old"]);
    expect(h.identity.activations).toEqual([true]);
    expect((await h.core.retirePreviousAuthorities()).anchorFingerprints).toEqual(["new"]);
    expect((await h.core.authorityStatus()).spiffeSequence).toBe(3n);
    const [c] = await h.core.listClients();
    expect(c?.spiffeId).toBe("spiffe://core.test/margo/wfm/wfm-1/client/alpha");
  });
});

describe("state manifest", () => {
  it("item 39: the ETag is the quoted sha256 of the exact body, which is RFC 8785 canonical (item 50)", async () => {
    await deploy();
    const snap = await h.core.manifest("alpha");
    const hex = createHash("sha256").update(snap.body).digest("hex");
    expect(snap.etag).toBe(`"sha256:${hex}"`);
    expect(Buffer.from(encodeStateManifest(manifestOf(snap.body))).equals(snap.body)).toBe(true);
  });

  it("item 42: manifestVersion strictly increases on create, update and delete, across restarts", async () => {
    const seen = [(await h.core.manifest("alpha")).manifestVersion];
    const d = await deploy();
    seen.push((await h.core.manifest("alpha")).manifestVersion);
    await h.core.updateDeployment(d.deploymentId, { greeting: "hi" });
    seen.push((await h.core.manifest("alpha")).manifestVersion);
    await h.restart();
    seen.push((await h.core.manifest("alpha")).manifestVersion);
    await h.core.deleteDeployment(d.deploymentId);
    seen.push((await h.core.manifest("alpha")).manifestVersion);
    expect(seen).toEqual([1n, 2n, 3n, 3n, 4n]);
  });

  it("items 44 and 46: references use the rc.3 url forms, and deploymentId equals the YAML id", async () => {
    const d = await deploy();
    const m = manifestOf((await h.core.manifest("alpha")).body);
    expect(m.bundle?.mediaType).toBe("application/vnd.margo.bundle.v1+tar+gzip");
    expect(m.bundle?.url).toBe(`/api/v1/bundles/${m.bundle?.digest}`);
    const [ref] = m.deployments;
    expect(ref?.url).toBe(`/api/v1/deployments/${d.deploymentId}/${d.digest}`);
    expect(ref?.sizeBytes).toBe(BigInt(d.yaml.byteLength));
    const yaml = await h.core.deploymentYaml("alpha", d.deploymentId, d.digest);
    expect(decodeApplicationDeployment(yaml).value?.id).toBe(ref?.deploymentId);
  });

  it("item 45: the bundle holds exactly the referenced YAMLs at its root, and is deterministic", async () => {
    const a = await deploy("alpha", "dev1");
    const b = await deploy("alpha", "dev2");
    const m = manifestOf((await h.core.manifest("alpha")).body);
    const digest = m.bundle?.digest ?? "";
    const bytes = await h.core.bundle("alpha", digest);
    expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(digest);
    expect(m.bundle?.sizeBytes).toBe(BigInt(bytes.byteLength));
    const { entries, problems } = await readTarGz(bytes);
    expect(problems.filter((p) => p.severity === "error")).toEqual([]);
    const byName = new Map(entries.map((e) => [e.path, Buffer.from(e.content ?? [])]));
    expect([...byName.keys()].sort()).toEqual(
      [`${a.deploymentId}.yaml`, `${b.deploymentId}.yaml`].sort(),
    );
    expect(byName.get(`${a.deploymentId}.yaml`)?.equals(a.yaml)).toBe(true);
    expect(entries.every((e) => e.type === "file" && e.mode === 0o644)).toBe(true);
    // Same content, same digest: an update that changes nothing keeps the bundle.
    await h.core.updateDeployment(a.deploymentId, {});
    expect(manifestOf((await h.core.manifest("alpha")).body).bundle?.digest).toBe(digest);
  });

  it("item 43: deleting the last deployment gives bundle null; the old bundle goes once it is two manifests old (item 48)", async () => {
    const d = await deploy();
    const old = manifestOf((await h.core.manifest("alpha")).body).bundle?.digest ?? "";
    await h.core.deleteDeployment(d.deploymentId);
    const m = manifestOf((await h.core.manifest("alpha")).body);
    expect(m.deployments).toEqual([]);
    expect(m.bundle).toBeUndefined();
    expect(JSON.parse((await h.core.manifest("alpha")).body.toString()).bundle).toBeNull();
    // Manifest N-1 still references them: a device finishing it may fetch them.
    expect((await h.core.bundle("alpha", old)).length).toBeGreaterThan(0);
    expect((await h.core.deploymentYaml("alpha", d.deploymentId, d.digest)).equals(d.yaml)).toBe(
      true,
    );
    await deploy("alpha", "dev2");
    expect((await caught(h.core.bundle("alpha", old))).kind).toBe("invalid-bundle");
    expect((await caught(h.core.deploymentYaml("alpha", d.deploymentId, d.digest))).kind).toBe(
      "deployment-not-found",
    );
  });

  it("a device that fetched manifest N-1 just before N can still fetch its YAML and bundle, after a restart too", async () => {
    const d = await deploy();
    const n1 = manifestOf((await h.core.manifest("alpha")).body);
    const n1Bundle = await h.core.bundle("alpha", n1.bundle?.digest ?? "");
    const updated = await h.core.updateDeployment(d.deploymentId, { greeting: "hi" });
    expect(updated.digest).not.toBe(d.digest);
    const n = manifestOf((await h.core.manifest("alpha")).body);
    expect(n.bundle?.digest).not.toBe(n1.bundle?.digest);
    await h.restart();
    // N-1's artifacts, byte for byte, and N's.
    expect((await h.core.deploymentYaml("alpha", d.deploymentId, d.digest)).equals(d.yaml)).toBe(
      true,
    );
    expect((await h.core.bundle("alpha", n1.bundle?.digest ?? "")).equals(n1Bundle)).toBe(true);
    expect(
      (await h.core.deploymentYaml("alpha", d.deploymentId, updated.digest)).equals(updated.yaml),
    ).toBe(true);
    expect((await h.core.bundle("alpha", n.bundle?.digest ?? "")).length).toBeGreaterThan(0);
    // Other clients never see them (item 5).
    await h.core.addClient("beta");
    expect((await caught(h.core.bundle("beta", n1.bundle?.digest ?? ""))).kind).toBe(
      "invalid-bundle",
    );
    expect((await caught(h.core.deploymentYaml("beta", d.deploymentId, d.digest))).kind).toBe(
      "deployment-not-found",
    );
  });

  it("items 47-48 and 5: content is served only by the caller's current digests", async () => {
    await h.core.addClient("beta");
    const d = await deploy();
    expect((await h.core.deploymentYaml("alpha", d.deploymentId, d.digest)).equals(d.yaml)).toBe(
      true,
    );
    const wrong = `sha256:${"a".repeat(64)}`;
    expect((await caught(h.core.deploymentYaml("alpha", d.deploymentId, wrong))).kind).toBe(
      "deployment-not-found",
    );
    expect((await caught(h.core.deploymentYaml("beta", d.deploymentId, d.digest))).kind).toBe(
      "deployment-not-found",
    );
    const bundle = manifestOf((await h.core.manifest("alpha")).body).bundle?.digest ?? "";
    expect((await caught(h.core.bundle("beta", bundle))).kind).toBe("invalid-bundle");
    expect(manifestOf((await h.core.manifest("beta")).body).deployments).toEqual([]);
  });

  it("item 42: concurrent changes each get their own version and the cache ends on the newest", async () => {
    const seen: bigint[] = [];
    h.core.watch("alpha", (s) => seen.push(s.manifestVersion));
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, i) => deploy("alpha", `dev${i}`)),
    );
    expect(created.map((d) => d.manifestVersion).sort((a, b) => Number(a - b))).toEqual([
      2n,
      3n,
      4n,
      5n,
      6n,
      7n,
      8n,
      9n,
    ]);
    const snap = await h.core.manifest("alpha");
    expect(snap.manifestVersion).toBe(9n);
    expect(manifestOf(snap.body).deployments.length).toBe(8);
    // Watchers never see a version go backwards.
    expect([...seen].sort((a, b) => Number(a - b))).toEqual(seen);
    expect(seen.at(-1)).toBe(9n);
  });

  it("a watcher is told synchronously, before the change call resolves, and can unsubscribe", async () => {
    const seen: bigint[] = [];
    const stop = h.core.watch("alpha", (s) => seen.push(s.manifestVersion));
    const d = await deploy();
    expect(seen).toEqual([2n]);
    stop();
    await h.core.deleteDeployment(d.deploymentId);
    expect(seen).toEqual([2n]);
  });
});

describe("deployments", () => {
  it("items 59-60: UUID id, applicationId, Kubernetes-safe name, fixed namespace, target deviceId", async () => {
    const d = await deploy("alpha", "gw/*");
    expect(d.deploymentId).toMatch(UUID);
    const m = d.deployment;
    expect(m?.id).toBe(d.deploymentId);
    expect(m?.spec?.applicationId).toBe(APP);
    expect(m?.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(m?.metadata?.name.startsWith("compose-multi-")).toBe(true);
    expect(m?.metadata?.namespace).toBe("margo");
    expect(m?.metadata?.deviceId).toBe("gw/*");
    const digest = `sha256:${createHash("sha256").update(d.yaml).digest("hex")}`;
    expect(d.digest).toBe(digest);
    expect(d.manifestVersion).toBe(2n);
  });

  it("item 60: ../x, . segments and ids over 253 characters are refused before anything is committed", async () => {
    for (const bad of ["../x", "gw/..", "./*", "x".repeat(3000), "x".repeat(254)]) {
      const err = await caught(deploy("alpha", bad));
      expect(err.kind, bad).toBe("semantic-error");
      expect(err.errors.map((e) => e.field)).toEqual(["/deviceId"]);
    }
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(1n);
    expect((await deploy("alpha", "x".repeat(253))).deviceId).toHaveLength(253);
    expect((await deploy("alpha", "gw/*")).deviceId).toBe("gw/*");
  });

  it("pre-provisioning: a device that has not reported yet can be targeted and finds it on its first poll", async () => {
    expect(await h.core.getDevice("alpha", "new-dev")).toBeUndefined();
    const d = await deploy("alpha", "new-dev");
    const m = manifestOf((await h.core.manifest("alpha")).body);
    expect(m.deployments.map((x) => x.deploymentId)).toEqual([d.deploymentId]);
    expect(await h.core.putCapabilities("alpha", "new-dev", capabilitiesBody("new-dev"))).toEqual({
      created: true,
    });
  });

  it("item 60: a deviceId that is not DeviceId_with_asterisk is refused", async () => {
    const err = await caught(deploy("alpha", "gw/*/x"));
    expect(err.kind).toBe("semantic-error");
    expect(err.errors[0]?.field).toBe("/deviceId");
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(1n);
  });

  it("items 61-62: components in description order, component and profile extensions copied, root ones never", async () => {
    const text = (await fixtureDescription(APP))
      .toString()
      .replace(
        "deploymentProfiles:\n",
        "x-acme-extensions:\n  secret: root-only\ndeploymentProfiles:\n",
      )
      .replace(
        "    components:\n      - name: store",
        "    x-acme-extensions:\n      tier: edge\n    components:\n      - name: store",
      );
    expect(text).toContain("root-only");
    await catalogApp(h, Buffer.from(text), "2.2.0", APP);
    const d = await h.core.createDeployment({
      applicationId: APP,
      version: "2.2.0",
      clientId: "alpha",
      deviceId: "dev1",
    });
    const profile = d.deployment?.spec?.deploymentProfile;
    expect(profile?.components.map((c) => c.name)).toEqual(["store", "api", "web"]);
    expect(profile?.components[1]?.extensions).toEqual({
      "x-margo-fixtures-extensions": { role: "backend" },
    });
    expect(profile?.extensions).toEqual({ "x-acme-extensions": { tier: "edge" } });
    const yaml = d.yaml.toString();
    expect(yaml).toContain("tier: edge");
    expect(yaml).not.toContain("root-only");
    expect(d.deployment?.spec?.extensions).toEqual({});
  });

  it("newest version is used when none is given; unknown application or profile is not-found", async () => {
    await catalogApp(h, await fixtureDescription(APP), "2.0.0", APP);
    expect((await deploy()).version).toBe("2.0.0");
    expect(
      (
        await caught(
          h.core.createDeployment({ applicationId: "nope", clientId: "alpha", deviceId: "d" }),
        )
      ).kind,
    ).toBe("not-found");
    expect(
      (
        await caught(
          h.core.createDeployment({
            applicationId: APP,
            profileId: "nope",
            clientId: "alpha",
            deviceId: "d",
          }),
        )
      ).kind,
    ).toBe("not-found");
    expect(
      (
        await caught(
          h.core.createDeployment({ applicationId: APP, clientId: "ghost", deviceId: "d" }),
        )
      ).kind,
    ).toBe("not-found");
  });

  it("item 63: parameters are resolved from defaults and overrides, with targets for the profile", async () => {
    const d = await deploy("alpha", "dev1", { greeting: "bonjour", logLevel: "warn" });
    const params = d.deployment?.spec?.parameters ?? {};
    expect(Object.keys(params).sort()).toEqual([
      "apiPort",
      "debug",
      "greeting",
      "logLevel",
      "storeQuota",
    ]);
    expect(params.greeting?.value).toBe("bonjour");
    expect(params.apiPort?.value).toBe(8081);
    expect(params.apiPort?.targets).toEqual([{ pointer: "API_PORT", components: ["api", "web"] }]);
  });

  it("item 63: every bad value is refused at once, before anything is committed", async () => {
    const err = await caught(
      deploy("alpha", "dev1", {
        greeting: "",
        apiPort: 80,
        logLevel: "loud",
        storeQuota: 0.123,
        extra: 1,
      }),
    );
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.map((e) => e.field).sort()).toEqual([
      "/parameters/apiPort",
      "/parameters/extra",
      "/parameters/greeting",
      "/parameters/logLevel",
      "/parameters/storeQuota",
    ]);
    expect(await h.core.listDeployments()).toEqual([]);
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(1n);
  });

  it("item 63: an update keeps the id, changes the digest, and may not change an immutable setting", async () => {
    const d = await deploy();
    const u = await h.core.updateDeployment(d.deploymentId, { greeting: "hi" });
    expect(u.deploymentId).toBe(d.deploymentId);
    expect(u.digest).not.toBe(d.digest);
    expect(u.manifestVersion).toBe(3n);
    const err = await caught(h.core.updateDeployment(d.deploymentId, { apiPort: 9000 }));
    expect(err.kind).toBe("semantic-error");
    expect(err.errors).toEqual([expect.objectContaining({ field: "/parameters/apiPort" })]);
    const bad = await caught(h.core.updateDeployment(d.deploymentId, { debug: "yes" }));
    expect(bad.errors[0]?.field).toBe("/parameters/debug");
    const [live] = await h.core.listDeployments({ clientId: "alpha" });
    expect(live?.digest).toBe(u.digest);
    expect((await h.core.manifest("alpha")).manifestVersion).toBe(3n);
  });

  it("update and delete of an unknown or deleted deployment are not-found; lists filter", async () => {
    await h.core.addClient("beta");
    const d = await deploy("alpha", "dev1");
    await deploy("beta", "dev1");
    expect((await h.core.listDeployments({ clientId: "beta" })).length).toBe(1);
    expect((await h.core.listDeployments({ deviceId: "dev1" })).length).toBe(2);
    await h.core.deleteDeployment(d.deploymentId);
    expect((await caught(h.core.deleteDeployment(d.deploymentId))).kind).toBe("not-found");
    expect((await caught(h.core.updateDeployment(d.deploymentId, {}))).kind).toBe("not-found");
    expect((await h.core.listDeployments()).map((x) => x.clientId)).toEqual(["beta"]);
  });
});

describe("capabilities", () => {
  it("item 26: PUT creates, then replaces; the body is stored exactly", async () => {
    const body = capabilitiesBody("dev1");
    expect(await h.core.putCapabilities("alpha", "dev1", body)).toEqual({ created: true });
    const again = Buffer.from(` ${body.toString()}\n`);
    expect(await h.core.putCapabilities("alpha", "dev1", again)).toEqual({ created: false });
    const rec = await h.store.getDevice("alpha", "dev1");
    expect(rec?.capabilities.equals(again)).toBe(true);
    const dev = await h.core.getDevice("alpha", "dev1");
    expect(dev?.capabilities?.properties?.vendor).toBe("Acme");
  });

  it("item 29: malformed JSON is invalid-request", async () => {
    const err = await caught(h.core.putCapabilities("alpha", "dev1", Buffer.from("{nope")));
    expect(err.kind).toBe("invalid-request");
  });

  it("item 29: schema violations are semantic-error naming every field", async () => {
    const body = capabilitiesBody(
      "dev1",
      { vendor: 7, cpus: [{ cores: 2, architecture: "sparc" }] },
      { surprise: true },
    );
    const err = await caught(h.core.putCapabilities("alpha", "dev1", body));
    expect(err.kind).toBe("semantic-error");
    const fields = err.errors.map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        "/properties/vendor",
        "/properties/cpus/0/architecture",
        "/surprise",
      ]),
    );
    expect(await h.core.getDevice("alpha", "dev1")).toBeUndefined();
  });

  it("properties.id must equal the path deviceId (digest open question 9)", async () => {
    const err = await caught(h.core.putCapabilities("alpha", "dev2", capabilitiesBody("dev1")));
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.map((e) => e.field)).toEqual(["/properties/id"]);
  });

  it("item 27: a child before its gateway is gateway-not-found, and another client's gateway does not count (item 5)", async () => {
    await h.core.addClient("beta");
    await h.core.putCapabilities("beta", "gw", capabilitiesBody("gw"));
    const err = await caught(h.core.putCapabilities("alpha", "gw/cam", capabilitiesBody("gw/cam")));
    expect(err.kind).toBe("gateway-not-found");
    await h.core.putCapabilities("alpha", "gw", capabilitiesBody("gw"));
    expect(await h.core.putCapabilities("alpha", "gw/cam", capabilitiesBody("gw/cam"))).toEqual({
      created: true,
    });
    expect(
      await h.core.putCapabilities("alpha", "gw/p1/cam", capabilitiesBody("gw/p1/cam")),
    ).toEqual({ created: true });
  });

  it("the deviceId policy applies to capabilities: no . or .. segments, no wildcard, at most 253 characters", async () => {
    for (const bad of ["..", "gw/../x", "gw/*", "x".repeat(254)]) {
      const err = await caught(h.core.putCapabilities("alpha", bad, capabilitiesBody(bad)));
      expect(err.kind, bad).toBe("semantic-error");
      expect(err.errors.map((e) => e.field)).toEqual(["deviceId"]);
      const del = await caught(h.core.deleteCapabilities("alpha", bad));
      expect(del.kind, bad).toBe("semantic-error");
    }
    expect(await h.core.listDevices("alpha")).toEqual([]);
  });

  it("item 34: unknown supportedDeploymentTypes are accepted and read as custom", async () => {
    const body = capabilitiesBody("dev1", { supportedDeploymentTypes: ["compose", "wasm"] });
    expect(await h.core.putCapabilities("alpha", "dev1", body)).toEqual({ created: true });
    const dev = await h.core.getDevice("alpha", "dev1");
    expect(dev?.capabilities?.properties?.supportedDeploymentTypes).toEqual(["compose", "custom"]);
  });

  it("item 35: unknown x-…-extensions never fail", async () => {
    const body = capabilitiesBody("dev1", {}, { "x-unknown-vendor-extensions": { a: [1, 2] } });
    expect(await h.core.putCapabilities("alpha", "dev1", body)).toEqual({ created: true });
  });

  it("item 28: DELETE of an unknown device is device-not-found; a gateway takes its children along", async () => {
    expect((await caught(h.core.deleteCapabilities("alpha", "dev1"))).kind).toBe(
      "device-not-found",
    );
    await h.core.putCapabilities("alpha", "gw", capabilitiesBody("gw"));
    await h.core.putCapabilities("alpha", "gw/a", capabilitiesBody("gw/a"));
    await h.core.putCapabilities("alpha", "gwx", capabilitiesBody("gwx"));
    await h.core.deleteCapabilities("alpha", "gw");
    expect((await h.core.listDevices("alpha")).map((d) => d.deviceId)).toEqual(["gwx"]);
    expect((await caught(h.core.deleteCapabilities("alpha", "gw/a"))).kind).toBe(
      "device-not-found",
    );
  });
});

describe("status", () => {
  const COMPONENTS = ["store", "api", "web"];

  it("item 71: the first report is created, later ones update; the latest is stored exactly", async () => {
    const d = await deploy();
    const first = statusBody(d.deploymentId, 2, "installing", COMPONENTS);
    expect(await h.core.reportStatus("alpha", d.deploymentId, first)).toEqual({ created: true });
    const second = statusBody(d.deploymentId, 2, "installed", COMPONENTS);
    expect(await h.core.reportStatus("alpha", d.deploymentId, second)).toEqual({ created: false });
    const [s] = await h.core.listStatuses({ clientId: "alpha" });
    expect(s?.status?.status?.state).toBe(3); // DEPLOYMENT_STATE_INSTALLED
    const [raw] = await h.store.listStatuses({ deploymentId: d.deploymentId });
    expect(raw?.body.equals(second)).toBe(true);
  });

  it("item 71: malformed is invalid-request; unknown state and missing adoptedManifestVersion are semantic-error", async () => {
    const d = await deploy();
    expect(
      (await caught(h.core.reportStatus("alpha", d.deploymentId, Buffer.from("[")))).kind,
    ).toBe("invalid-request");
    const bad = Buffer.from(
      JSON.stringify({ deploymentId: d.deploymentId, status: { state: "Done" }, components: [] }),
    );
    const err = await caught(h.core.reportStatus("alpha", d.deploymentId, bad));
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.map((e) => e.field)).toEqual(
      expect.arrayContaining(["/adoptedManifestVersion", "/status/state"]),
    );
  });

  it("item 71: a body deploymentId other than the path is semantic-error", async () => {
    const d = await deploy();
    const other = "00000000-0000-4000-8000-000000000000";
    const err = await caught(
      h.core.reportStatus("alpha", d.deploymentId, statusBody(other, 2, "installed", COMPONENTS)),
    );
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.map((e) => e.field)).toEqual(["/deploymentId"]);
  });

  it("item 5: a deployment never issued to this client is semantic-error at /deploymentId", async () => {
    await h.core.addClient("beta");
    const d = await deploy();
    const err = await caught(
      h.core.reportStatus(
        "beta",
        d.deploymentId,
        statusBody(d.deploymentId, 1, "installed", COMPONENTS),
      ),
    );
    expect(err.kind).toBe("semantic-error");
    expect(err.errors[0]?.field).toBe("/deploymentId");
    expect(await h.core.listStatuses()).toEqual([]);
  });

  it("item 68: components must be exactly the deployment's components", async () => {
    const d = await deploy();
    const err = await caught(
      h.core.reportStatus(
        "alpha",
        d.deploymentId,
        statusBody(d.deploymentId, 2, "installed", ["store", "store", "cache"]),
      ),
    );
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.map((e) => e.field)).toEqual([
      "/components/1/name",
      "/components/2/name",
      "/components",
    ]);
  });

  it("adoptedManifestVersion beyond the client's current version is semantic-error", async () => {
    const d = await deploy();
    const err = await caught(
      h.core.reportStatus(
        "alpha",
        d.deploymentId,
        statusBody(d.deploymentId, 3, "installed", COMPONENTS),
      ),
    );
    expect(err.errors.map((e) => e.field)).toEqual(["/adoptedManifestVersion"]);
  });

  it("a report's deviceId must be the target or a child of a gw/* target", async () => {
    const d = await deploy("alpha", "gw/*");
    const ok = statusBody(d.deploymentId, 2, "installed", COMPONENTS, { deviceId: "gw/cam" });
    expect(await h.core.reportStatus("alpha", d.deploymentId, ok)).toEqual({ created: true });
    const bad = statusBody(d.deploymentId, 2, "installed", COMPONENTS, { deviceId: "other" });
    const err = await caught(h.core.reportStatus("alpha", d.deploymentId, bad));
    expect(err.errors.map((e) => e.field)).toEqual(["/deviceId"]);
  });

  it("a removed report for a deleted deployment is accepted and kept across a restart", async () => {
    const d = await deploy();
    await h.core.deleteDeployment(d.deploymentId);
    const body = statusBody(d.deploymentId, 3, "removed", COMPONENTS);
    expect(await h.core.reportStatus("alpha", d.deploymentId, body)).toEqual({ created: true });
    await h.restart();
    const [s] = await h.core.listStatuses({ deploymentId: d.deploymentId });
    expect(s?.status?.adoptedManifestVersion).toBe(3n);
  });
});

describe("reset", () => {
  it("empties manifests with deployments under a new version and forgets applications and devices", async () => {
    await h.core.addClient("beta");
    await deploy();
    await h.core.putCapabilities("alpha", "dev1", capabilitiesBody("dev1"));
    await h.core.reset();
    const a = await h.core.manifest("alpha");
    expect(a.manifestVersion).toBe(3n);
    expect(manifestOf(a.body).deployments).toEqual([]);
    expect((await h.core.manifest("beta")).manifestVersion).toBe(1n);
    expect(await h.core.listApplications()).toEqual([]);
    expect(await h.core.listDevices()).toEqual([]);
    expect(h.core.isAccepted("alpha")).toBe(true);
  });
});
