import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLog } from "../src/log.js";
import { HelmProvider } from "../src/providers/helm/helm-provider.js";
import type { ComponentSpec } from "../src/providers/provider.js";
import {
  FIXTURE_IMAGE,
  type PublishedRef,
  publishFixtureComponents,
  TEST_REGISTRY,
} from "./support/compose-components.js";

function onPath(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// Helm needs a Kubernetes cluster: these tests run wherever helm and kind are on PATH, and say
// why they are skipped elsewhere (this machine has neither).
const missing = ["helm", "kind"].filter((c) => !onPath(c));
if (missing.length > 0) {
  console.warn(
    `helm-provider: skipped: ${missing.join("/")} not on PATH (this machine has no Kubernetes)`,
  );
}

describe.skipIf(missing.length > 0)("HelmProvider on a kind cluster", () => {
  const cluster = `margo-t-${randomUUID().slice(0, 8)}`;
  const deviceId = `margo-t-dev-${randomUUID().slice(0, 8)}`;
  const never = new AbortController().signal;
  const OTEL = { HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" };
  let dir: string;
  let kubeconfig: string;
  let provider: HelmProvider;
  let chart: PublishedRef;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margo-t-helm-"));
    kubeconfig = join(dir, "kubeconfig");
    execFileSync("kind", ["create", "cluster", "--name", cluster, "--kubeconfig", kubeconfig], {
      stdio: "inherit",
    });
    // The chart's image is named after the loopback registry the node cannot reach; loading it
    // lets pullPolicy IfNotPresent find it on the node.
    execFileSync("kind", ["load", "docker-image", FIXTURE_IMAGE, "--name", cluster], {
      stdio: "inherit",
    });
    const published = await publishFixtureComponents("helm-app");
    const c = published["hello-web"];
    if (!c) throw new Error("helm-app has no hello-web component");
    chart = c;
    provider = new HelmProvider({
      deviceId,
      helmBinary: "helm",
      kubeconfig,
      workDir: join(dir, "work"),
      plainHttpRegistries: [TEST_REGISTRY],
      log: silentLog,
    });
  }, 600_000);

  afterAll(async () => {
    try {
      execFileSync("kind", ["delete", "cluster", "--name", cluster], { stdio: "inherit" });
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  function spec(over: Partial<ComponentSpec> = {}): ComponentSpec {
    return {
      deploymentId: "7d1e3c55-0000-4000-8000-000000000001",
      deploymentName: "hello-helm",
      namespace: "margo-t",
      componentName: "hello-web",
      repository: chart.repository,
      revision: chart.revision,
      wait: true,
      timeoutMs: 180_000,
      parameters: {},
      injectedEnv: OTEL,
      specHash: "h1",
      ...over,
    };
  }

  it("probe finds helm and the cluster", async () => {
    const p = await provider.probe();
    expect(p.available).toBe(true);
    expect(p.version).toContain("kubernetes");
  });

  it("item 72: installs the chart, observe reads it through the Kubernetes API", async () => {
    expect(await provider.apply(spec(), never)).toEqual({ state: "installed" });
    const seen = await provider.observe(spec());
    expect(seen.health).toBe("running");
    expect(seen.specHash).toBe("h1");
    expect(await provider.listInstalled()).toContainEqual(
      expect.objectContaining({ componentName: "hello-web", namespace: "margo-t" }),
    );
  }, 240_000);

  it("item 89: the post-renderer put the OTel variables into every container of the release", async () => {
    const k8s = await import("@kubernetes/client-node");
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const pods = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedPod({
      namespace: "margo-t",
      labelSelector: "app.kubernetes.io/instance=hello-web-7d1e3c55",
    });
    expect(pods.items.length).toBeGreaterThan(0);
    for (const p of pods.items) {
      for (const c of [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])]) {
        expect(c.env ?? []).toContainEqual({
          name: "HTTP_OTEL_EXPORTER_OTLP_ENDPOINT",
          value: "http://127.0.0.1:4318",
        });
      }
    }
  }, 60_000);

  it("a parameter change upgrades the release with the new spec hash", async () => {
    const s = spec({ parameters: { "config.greeting": "bye" }, specHash: "h2" });
    expect(await provider.apply(s, never)).toEqual({ state: "installed" });
    expect((await provider.observe(s)).specHash).toBe("h2");
  }, 240_000);

  it("remove uninstalls; observe says absent", async () => {
    expect(await provider.remove(spec(), never)).toEqual({ state: "removed" });
    expect((await provider.observe(spec())).health).toBe("absent");
    expect(await provider.remove(spec(), never)).toEqual({ state: "removed" });
  }, 240_000);
});
