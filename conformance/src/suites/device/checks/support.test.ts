import { decodeApplicationDeployment } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import type { DeviceCtx, EngineContainer } from "../context.js";
import { capabilityChecks } from "./capabilities.js";
import { manifestChecks } from "./manifest.js";
import { reconcileChecks, startedNs } from "./reconcile.js";
import { retryChecks } from "./retry.js";
import { mostSevere, statusChecks } from "./status.js";
import { carries, containersOf, deviceCheck, MARK_ENV, markOf, planDeployment } from "./support.js";

const ref = {
  repository: "oci://127.0.0.1:5000/margo-conformance/components/running",
  revision: "1.0.0",
};
// Only what planDeployment reads: the configured device id and the component references.
const ctx = {
  device: { deviceId: "dev-unit-1" },
  components: { running: ref, exitsNonZero: ref, neverReady: ref, unsafeArchive: ref },
} as unknown as DeviceCtx;

function container(mark: string | undefined, over: Partial<EngineContainer> = {}): EngineContainer {
  return {
    id: Math.random().toString(16).slice(2),
    name: "c",
    image: "busybox",
    state: "running",
    exitCode: 0,
    startedAt: "2026-01-01T00:00:00Z",
    labels: {},
    env: mark === undefined ? ["PATH=/bin"] : ["PATH=/bin", `${MARK_ENV}=${mark}`],
    ...over,
  };
}

describe("planDeployment", () => {
  it("writes a valid rc.3 ApplicationDeployment for the configured device, components in listed order, one mark per component", () => {
    const p = planDeployment(ctx, [
      { name: "zeta", ref },
      { name: "alpha", ref, timeout: "0m3s" },
    ]);
    const d = decodeApplicationDeployment(p.yaml);
    expect(d.problems.filter((x) => x.severity === "error")).toEqual([]);
    expect(d.value?.id).toBe(p.deploymentId);
    expect(d.value?.metadata?.deviceId).toBe("dev-unit-1");
    expect(d.value?.metadata?.name).toBe(p.name);
    const comps = d.value?.spec?.deploymentProfile?.components ?? [];
    expect(comps.map((c) => c.name)).toEqual(["zeta", "alpha"]);
    expect(comps[1]?.properties?.timeout).toBe("0m3s");
    expect(comps[0]?.properties?.wait).toBe(true);
    const marks = Object.values(d.value?.spec?.parameters ?? {}).map((x) => [
      x.value,
      x.targets[0]?.pointer,
      x.targets[0]?.components,
    ]);
    expect(marks).toEqual([
      [`${p.deploymentId}/zeta`, MARK_ENV, ["zeta"]],
      [`${p.deploymentId}/alpha`, MARK_ENV, ["alpha"]],
    ]);
  });

  it("prefixes oci:// when a component reference lacks it, and each plan gets a fresh id", () => {
    const a = planDeployment(ctx, [
      { name: "app", ref: { repository: "127.0.0.1:5000/x", revision: "1.0.0" } },
    ]);
    const b = planDeployment(ctx, [{ name: "app", ref }]);
    expect(a.yaml).toContain("repository: oci://127.0.0.1:5000/x");
    expect(a.deploymentId).not.toBe(b.deploymentId);
  });

  it("keeps a given deployment id (a new revision) and still decodes with extensions and unknown keys added", () => {
    const p = planDeployment(ctx, [{ name: "app", ref }], {
      deploymentId: "0b6f3c2e-1111-4222-8333-944455556666",
      extensions: true,
      mutate: (doc) => doc.setIn(["spec", "parameters", "unknown"], { value: "x", targets: [] }),
    });
    expect(p.deploymentId).toBe("0b6f3c2e-1111-4222-8333-944455556666");
    expect(p.yaml.match(/x-conformance-extensions/g)?.length).toBe(3);
    expect(p.yaml).toContain("unknown:");
    expect(decodeApplicationDeployment(p.yaml).value?.id).toBe(p.deploymentId);
  });
});

describe("container recognition", () => {
  it("matches containers by the mark parameter, per deployment and per component", () => {
    const cs = [container("d1/a"), container("d1/b"), container("d2/a"), container(undefined)];
    expect(containersOf(cs, "d1")).toHaveLength(2);
    expect(containersOf(cs, "d1", "b")).toHaveLength(1);
    expect(containersOf(cs, "d")).toHaveLength(0);
    expect(markOf(cs[3] as EngineContainer)).toBeUndefined();
  });
});

describe("startedNs", () => {
  it("orders Docker StartedAt values whose fractions differ in length", () => {
    expect(startedNs("2026-11-26T15:15:05.9Z") > startedNs("2026-11-26T15:15:05.123456789Z")).toBe(
      true,
    );
    expect(startedNs("2026-11-26T15:15:06Z") > startedNs("2026-11-26T15:15:05.999999999Z")).toBe(
      true,
    );
    expect(startedNs("2026-11-26T15:15:05.000000001Z") - startedNs("2026-11-26T15:15:05Z")).toBe(
      1n,
    );
  });
});

describe("mostSevere", () => {
  it("follows failed > removing > installing > pending > removed > installed", () => {
    expect(mostSevere(["installed", "failed"])).toBe("failed");
    expect(mostSevere(["installed", "installing"])).toBe("installing");
    expect(mostSevere(["removed", "installed"])).toBe("removed");
    expect(mostSevere(["pending", "removing"])).toBe("removing");
    expect(mostSevere(["Installed"])).toBeUndefined();
  });
});

describe("carries", () => {
  it("finds the ETag in an If-None-Match list, weak or strong", () => {
    expect(carries('"sha256:aa"', '"sha256:aa"')).toBe(true);
    expect(carries('"x", W/"sha256:aa"', '"sha256:aa"')).toBe(true);
    expect(carries('"sha256:ab"', '"sha256:aa"')).toBe(false);
    expect(carries(undefined, '"sha256:aa"')).toBe(false);
  });
});

describe("the device-state check records", () => {
  const all = [
    ...capabilityChecks,
    ...manifestChecks,
    ...reconcileChecks,
    ...statusChecks,
    ...retryChecks,
  ];
  const families = ["capabilities", "manifest", "reconcile", "status", "retry"].map(
    (f) => `device.${f}`,
  );

  it("have unique kebab-case ids in their fixed families, cite device requirements, and use the device suite", () => {
    expect(new Set(all.map((c) => c.id)).size).toBe(all.length);
    for (const c of all) {
      expect(c.id).toMatch(/^device\.[a-z]+\.[a-z0-9-]+$/);
      expect(families).toContain(c.family);
      expect(c.id.startsWith(`${c.family}.`)).toBe(true);
      expect(c.suite).toBe("device");
      expect(c.requirements.length).toBeGreaterThan(0);
      for (const r of c.requirements) expect(r).toMatch(/^device-\d{3}s?$/);
    }
  });

  it("are SHOULD only where every cited requirement is a SHOULD half or needs one", () => {
    const should = all.filter((c) => c.level === "SHOULD").map((c) => c.id);
    expect(should.sort()).toEqual([
      "device.manifest.rollback-logged",
      "device.status.timeout-fails",
    ]);
  });

  it("derive the family from the id", () => {
    const c = deviceCheck({
      id: "device.retry.x-y",
      title: "t",
      requirements: ["device-086"],
      run: async () => {},
    });
    expect(c.family).toBe("device.retry");
    expect(c.level).toBe("MUST");
  });
});
