import type { ApplicationDeployment } from "@margo/proto";
import { decodeApplicationDeployment } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../config.js";
import {
  componentSpecs,
  DEFAULT_TIMEOUT_MS,
  parameterText,
  parseTimeout,
  specHashOf,
} from "./component-spec.js";

const ID = "5f0c3b7e-2a41-4d7c-9a55-0a5c2f1e9b10";

const YAML = `id: ${ID}
metadata:
  name: demo-app
  namespace: margo
  deviceId: dev-1
spec:
  applicationId: demo
  deploymentProfile:
    type: compose
    components:
      - name: web
        properties:
          repository: oci://127.0.0.1:5000/demo/web
          revision: 1.0.0
          timeout: 2m30s
      - name: db
        properties:
          repository: oci://127.0.0.1:5000/demo/db
          revision: 2.0.0
          wait: false
  parameters:
    greeting:
      value: hello world
      targets:
        - pointer: GREETING
          components: [web]
    port:
      value: 8080
      targets:
        - pointer: PORT
          components: [web, db]
    debug:
      value: true
      targets:
        - pointer: DEBUG
          components: [db]
    ghost:
      value: x
      targets:
        - pointer: GHOST
          components: [not-a-component]
  x-acme-extensions:
    anything: goes
`;

function deployment(text = YAML): ApplicationDeployment {
  const d = decodeApplicationDeployment(text);
  if (!d.value) throw new Error(JSON.stringify(d.problems));
  return d.value;
}

const config = defaultConfig("/tmp/x", {
  deviceId: "dev-1",
  wfmUrl: "https://127.0.0.1:1",
  identityDir: "/tmp/id",
});

describe("componentSpecs", () => {
  it("keeps the listed order and maps parameters to the components their targets name (items 56, 72)", () => {
    const specs = componentSpecs(ID, deployment(), config);
    expect(specs.map((s) => s.componentName)).toEqual(["web", "db"]);
    const [web, db] = specs;
    expect(web?.parameters).toEqual({ GREETING: "hello world", PORT: "8080" });
    expect(db?.parameters).toEqual({ PORT: "8080", DEBUG: "true" });
    expect(web?.deploymentId).toBe(ID);
    expect(web?.deploymentName).toBe("demo-app");
    expect(web?.namespace).toBe("margo");
    expect(web?.repository).toBe("oci://127.0.0.1:5000/demo/web");
    expect(web?.revision).toBe("1.0.0");
  });

  it("timeout parsed, default 5m0s; wait defaults to true (items 72-73)", () => {
    const [web, db] = componentSpecs(ID, deployment(), config);
    expect(web?.timeoutMs).toBe(150_000);
    expect(web?.wait).toBe(true);
    expect(db?.timeoutMs).toBe(DEFAULT_TIMEOUT_MS);
    expect(db?.wait).toBe(false);
    expect(parseTimeout("0m5s")).toBe(5_000);
    expect(parseTimeout("10m0s")).toBe(600_000);
    expect(parseTimeout(undefined)).toBe(300_000);
  });

  it("parameter text: strings as is, numbers/booleans as JSON, arrays as JSON", () => {
    expect(parameterText("a b")).toBe("a b");
    expect(parameterText(1.5)).toBe("1.5");
    expect(parameterText(false)).toBe("false");
    expect(parameterText(12345678901234567890n)).toBe("12345678901234567890");
    expect(parameterText(["a", 1])).toBe('["a",1]');
  });

  it("injects the OTel variables into every component (item 89), optional ones only when configured", () => {
    const plain = componentSpecs(ID, deployment(), config);
    for (const s of plain) {
      expect(s.injectedEnv).toEqual({ HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" });
    }
    const full = componentSpecs(ID, deployment(), {
      ...config,
      otel: {
        collector: true,
        httpEndpoint: "http://collector:4318",
        grpcEndpoint: "http://collector:4317",
        certificate: "/etc/otel/ca.pem",
        protocol: "grpc",
      },
    });
    expect(full[1]?.injectedEnv).toEqual({
      HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      GRPC_OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
      OTEL_EXPORTER_OTLP_CERTIFICATE: "/etc/otel/ca.pem",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
    });
  });

  it("specHash is stable across parameter order and decodes, and changes with what must re-apply", () => {
    const a = componentSpecs(ID, deployment(), config);
    const b = componentSpecs(ID, deployment(), config);
    expect(a[0]?.specHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a.map((s) => s.specHash)).toEqual(b.map((s) => s.specHash));
    expect(a[0]?.specHash).not.toBe(a[1]?.specHash);
    const reordered = YAML.replace(/ {2}parameters:\n([\s\S]*?) {2}x-acme/, (_m, body: string) => {
      const blocks = body.split(/(?=^ {4}\w)/m);
      return `  parameters:\n${blocks.reverse().join("")}  x-acme`;
    });
    expect(reordered).not.toBe(YAML);
    expect(componentSpecs(ID, deployment(reordered), config).map((s) => s.specHash)).toEqual(
      a.map((s) => s.specHash),
    );
    // A changed parameter touches only the components it targets.
    const changed = componentSpecs(ID, deployment(YAML.replace("hello world", "bye")), config);
    expect(changed[0]?.specHash).not.toBe(a[0]?.specHash);
    expect(changed[1]?.specHash).toBe(a[1]?.specHash);
    const base = a[0];
    if (!base) throw new Error("no spec");
    const { specHash: _h, deploymentId: _d, ...rest } = base;
    expect(specHashOf(rest)).toBe(base.specHash);
    for (const mutated of [
      { ...rest, revision: "1.0.1" },
      { ...rest, repository: "oci://127.0.0.1:5000/demo/other" },
      { ...rest, wait: false },
      { ...rest, timeoutMs: 1 },
      { ...rest, injectedEnv: { HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" } },
      { ...rest, parameters: { ...rest.parameters, NEW: "1" } },
    ]) {
      expect(specHashOf(mutated)).not.toBe(base.specHash);
    }
  });
});
