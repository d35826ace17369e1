import { describe, expect, it } from "vitest";
import type { ComponentSpec } from "../provider.js";
import {
  helmReleaseName,
  helmUninstallArgs,
  helmUpgradeArgs,
  labelValue,
  setValue,
} from "./helm-args.js";

const spec: ComponentSpec = {
  deploymentId: "5F0C2A10-1111-4222-8333-944455556666",
  deploymentName: "demo",
  namespace: "edge-apps",
  componentName: "Hello_Web",
  repository: "oci://127.0.0.1:5000/x/hello-web",
  revision: "0.1.0",
  wait: true,
  timeoutMs: 90_500,
  parameters: { "image.tag": "1.2", "env.list": "a,b\\c", replicaCount: "007" },
  injectedEnv: { HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel" },
  specHash: "h".repeat(64),
};

describe("helmReleaseName", () => {
  it("is <component>-<deploymentId first 8> as a DNS label (digest 11)", () => {
    expect(helmReleaseName(spec)).toBe("hello-web-5f0c2a10");
  });

  it("stays within Helm's 53 characters", () => {
    const n = helmReleaseName({ deploymentId: "abcdef0123", componentName: "x".repeat(90) });
    expect(n.length).toBeLessThanOrEqual(53);
    expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(n.endsWith("-abcdef01")).toBe(true);
  });
});

describe("helmUpgradeArgs", () => {
  const args = helmUpgradeArgs("device-1", spec, "/w/chart.tgz");

  it("installs or upgrades the release in the deployment namespace", () => {
    expect(args.slice(0, 7)).toEqual([
      "upgrade",
      "--install",
      "hello-web-5f0c2a10",
      "/w/chart.tgz",
      "--namespace",
      "edge-apps",
      "--create-namespace",
    ]);
  });

  it("item 72: --wait with the timeout rounded up to whole seconds", () => {
    const i = args.indexOf("--wait");
    expect(args.slice(i, i + 3)).toEqual(["--wait", "--timeout", "91s"]);
    expect(helmUpgradeArgs("d", { ...spec, wait: false }, "c")).not.toContain("--wait");
  });

  it("parameters become --set-string dot paths, sorted, with , and \\ escaped", () => {
    const sets = args.flatMap((a, i) => (args[i - 1] === "--set-string" ? [a] : []));
    expect(sets).toEqual(["env.list=a\\,b\\\\c", "image.tag=1.2", "replicaCount=007"]);
  });

  it("labels the release for listInstalled and carries the full spec hash in its description", () => {
    expect(args[args.indexOf("--labels") + 1]).toBe(
      "org.margo.device-id=device-1,org.margo.deployment-id=5F0C2A10-1111-4222-8333-944455556666,org.margo.component=Hello_Web",
    );
    expect(args[args.indexOf("--description") + 1]).toBe(`margo spec-hash=${"h".repeat(64)}`);
  });

  it("item 89: OTel variables go through the post-renderer, never as chart values", () => {
    expect(args.join(" ")).not.toContain("OTEL");
    expect(args).not.toContain("--post-renderer");
    const withRenderer = helmUpgradeArgs("d", spec, "c", { postRenderer: "/w/r.mjs" });
    expect(withRenderer.slice(withRenderer.indexOf("--post-renderer"))).toEqual([
      "--post-renderer",
      "/w/r.mjs",
    ]);
  });
});

describe("helpers", () => {
  it("labelValue makes a Kubernetes label value", () => {
    expect(labelValue("-a b/c-")).toBe("a-b-c");
    expect(labelValue("x".repeat(70))).toHaveLength(63);
  });

  it("setValue escapes Helm's separators", () => {
    expect(setValue("a,b")).toBe("a\\,b");
  });

  it("uninstall waits for the resources", () => {
    expect(helmUninstallArgs(spec, { kubeconfig: "/k" })).toEqual([
      "uninstall",
      "hello-web-5f0c2a10",
      "--namespace",
      "edge-apps",
      "--wait",
      "--timeout",
      "120s",
      "--kubeconfig",
      "/k",
    ]);
  });
});
