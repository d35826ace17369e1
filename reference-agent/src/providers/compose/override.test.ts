import { describe, expect, it } from "vitest";
import type { ComponentSpec } from "../provider.js";
import { composeEnv, composeOverride } from "./override.js";
import { LABEL } from "./project.js";

const spec: ComponentSpec = {
  deploymentId: "dep-1",
  deploymentName: "demo",
  namespace: "ns",
  componentName: "web",
  repository: "oci://127.0.0.1:5000/x/web",
  revision: "1.0.0",
  wait: true,
  timeoutMs: 1000,
  parameters: { GREETING: "cost $5", HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://param" },
  injectedEnv: {
    HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel",
    OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
  },
  specHash: "sha256:abc",
};

describe("composeOverride", () => {
  const doc = JSON.parse(composeOverride("dev-1", spec, ["a", "b"])) as {
    services: Record<
      string,
      { labels: Record<string, string>; environment: Record<string, string> }
    >;
  };

  it("gives every service our labels, the spec hash included", () => {
    expect(Object.keys(doc.services)).toEqual(["a", "b"]);
    for (const s of Object.values(doc.services)) {
      expect(s.labels).toEqual({
        [LABEL.deviceId]: "dev-1",
        [LABEL.deploymentId]: "dep-1",
        [LABEL.deploymentName]: "demo",
        [LABEL.namespace]: "ns",
        [LABEL.component]: "web",
        [LABEL.specHash]: "sha256:abc",
      });
    }
  });

  it("item 89: injects the OTel variables and the parameters, parameters winning, $ escaped", () => {
    expect(doc.services.a?.environment).toEqual({
      HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://param",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      GREETING: "cost $$5",
    });
  });
});

describe("composeEnv", () => {
  it("points compose at the configured engine and drops stray COMPOSE_* selections", () => {
    const env = composeEnv(
      "/run/other.sock",
      { A: "1" },
      {
        PATH: "/bin",
        COMPOSE_FILE: "evil.yaml",
        COMPOSE_PROJECT_NAME: "other",
        DOCKER_HOST: "tcp://elsewhere:2375",
      },
    );
    expect(env).toEqual({ PATH: "/bin", A: "1", DOCKER_HOST: "unix:///run/other.sock" });
  });
});
