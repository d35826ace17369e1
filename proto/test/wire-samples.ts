import type { ApplicationDeployment } from "../src/gen/margo/model/v1/application_deployment.js";
import { CpuArchitecture } from "../src/gen/margo/model/v1/common.js";
import {
  DeploymentState,
  type DeploymentStatusManifest,
} from "../src/gen/margo/model/v1/deployment_status.js";
import {
  type DeviceCapabilitiesManifest,
  InterfaceType,
  PeripheralType,
} from "../src/gen/margo/model/v1/device_capabilities.js";
import { SelectorOperator } from "../src/gen/margo/model/v1/device_constraints.js";
import { BackoffStrategy, type ProblemDetail } from "../src/gen/margo/model/v1/problem_detail.js";
import type { UnsignedAppStateManifest } from "../src/gen/margo/model/v1/state_manifest.js";
import type { SpiffeBundle, TrustDiscoveryDocument } from "../src/gen/margo/model/v1/trust.js";

// Model values that exercise every field of each wire document, for the wire-*.test.ts files.

export const U64_MAX = 18446744073709551615n;
export const DIGEST_A = `sha256:${"a".repeat(64)}`;
export const DIGEST_B = `sha256:${"b".repeat(64)}`;
export const DIGEST_C = `sha256:${"0123456789abcdef".repeat(4)}`;
export const DEPLOYMENT_ID = "ad9b614e-8912-45f4-a523-372358765def";

export function fullManifest(): UnsignedAppStateManifest {
  return {
    manifestVersion: U64_MAX,
    bundle: {
      mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
      digest: DIGEST_A,
      sizeBytes: U64_MAX,
      url: `/api/v1/bundles/${DIGEST_A}`,
    },
    deployments: [
      {
        deploymentId: DEPLOYMENT_ID,
        digest: DIGEST_B,
        url: `/api/v1/deployments/${DEPLOYMENT_ID}/${DIGEST_B}`,
        sizeBytes: 1234n,
      },
      { deploymentId: "second", digest: DIGEST_C, url: `/api/v1/deployments/second/${DIGEST_C}` },
    ],
  };
}

export function emptyManifest(): UnsignedAppStateManifest {
  return { manifestVersion: 1n, deployments: [] };
}

export function fullStatus(): DeploymentStatusManifest {
  return {
    deploymentId: DEPLOYMENT_ID,
    deviceId: "gateway-01/edge-01",
    adoptedManifestVersion: U64_MAX,
    status: {
      state: DeploymentState.DEPLOYMENT_STATE_FAILED,
      error: { code: "103", source: "gateway-01", message: "Autonomous placement not supported" },
    },
    components: [
      { name: "db", state: DeploymentState.DEPLOYMENT_STATE_INSTALLED },
      {
        name: "web",
        state: DeploymentState.DEPLOYMENT_STATE_FAILED,
        error: { code: "E1", source: "web", message: "image pull failed" },
      },
      {
        name: "cache",
        state: DeploymentState.DEPLOYMENT_STATE_REMOVED,
        error: { code: "", source: "", message: "" },
      },
    ],
  };
}

export function fullCapabilities(): DeviceCapabilitiesManifest {
  return {
    properties: {
      id: "gateway-01/edge-01",
      vendor: "Northstar",
      modelNumber: "NS-1",
      serialNumber: "SN-0001",
      cpus: [
        { cores: 4, architecture: CpuArchitecture.CPU_ARCHITECTURE_ARM64 },
        { cores: 0.5, architecture: CpuArchitecture.CPU_ARCHITECTURE_UNSPECIFIED },
      ],
      memory: "8Gi",
      storage: "64Gi",
      peripherals: [
        { type: PeripheralType.PERIPHERAL_TYPE_GPU, manufacturer: "NVIDIA", model: "Orin" },
        { type: PeripheralType.PERIPHERAL_TYPE_CAMERA },
      ],
      interfaces: [
        { type: InterfaceType.INTERFACE_TYPE_ETHERNET },
        { type: InterfaceType.INTERFACE_TYPE_RS232 },
      ],
      otelCollector: true,
      supportedRuntimes: ["oci", "custom"],
      supportedDeploymentTypes: ["helm", "compose", "custom"],
    },
    labels: {
      "example.com/site": "plant-7",
      "example.com/floor": 3,
      "example.com/ratio": 0.25,
      "example.com/gpu": true,
      "example.com/zones": ["a", "b"],
      "example.com/ports": [80, 443],
    },
    extensions: {
      "x-acme-extensions": { tier: "gold", nested: { list: [1, "two", null, false] } },
      "x-zeta-9-extensions": {},
    },
  };
}

/** A see-thru gateway that hosts nothing omits every hosting member (checklist 31). */
export function gatewayCapabilities(): DeviceCapabilitiesManifest {
  return {
    properties: {
      id: "gateway-01",
      vendor: "Northstar",
      modelNumber: "GW",
      serialNumber: "SN-GW",
      cpus: [],
      peripherals: [],
      interfaces: [],
      supportedRuntimes: [],
      supportedDeploymentTypes: [],
    },
    labels: {},
    extensions: {},
  };
}

export function fullProblem(): ProblemDetail {
  return {
    type: "https://docs.margo.org/specification/problem-types#semantic-error",
    title: "Semantic error",
    status: 422,
    detail: "supportedRuntimes must not be empty",
    instance: "/api/v1/capabilities/gateway-01",
    retryable: false,
    retryAfterSeconds: 30n,
    backoffStrategy: BackoffStrategy.BACKOFF_STRATEGY_NONE,
    errors: [
      { field: "properties.supportedRuntimes", message: "must contain at least one item" },
      {},
    ],
    extensionMembers: { vendor_error_code: "ERR_4291", vendor_detail: { attempts: 3, ok: false } },
  };
}

export function fullDeployment(): ApplicationDeployment {
  const component = (name: string) => ({
    name,
    properties: {
      repository: `oci://registry.example.com/org/${name}`,
      revision: "1.2.3-rc.1_build.5",
      wait: false,
      timeout: "5m0s",
    },
    extensions: { "x-acme-extensions": { priority: 1 } },
  });
  return {
    id: DEPLOYMENT_ID,
    metadata: {
      name: "digitron-deployment",
      namespace: "margo-poc",
      deviceId: "gateway-01/*",
      labels: { team: "ops", "example.com/env": "prod" },
    },
    spec: {
      applicationId: "com-northstartida-digitron-orchestrator",
      deploymentProfile: {
        type: "helm",
        components: [component("database"), { ...component("frontend"), extensions: {} }],
        deviceConstraints: {
          capacityRequirements: {
            cpu: {
              cores: 0.5,
              architectures: [
                CpuArchitecture.CPU_ARCHITECTURE_AMD64,
                CpuArchitecture.CPU_ARCHITECTURE_RISCV64,
              ],
            },
            memory: "1024Mi",
            storage: "10Gi",
          },
          eligibilityRules: [
            {
              propertySelector: {
                matchExpressions: [
                  {
                    key: "/vendor",
                    operator: SelectorOperator.SELECTOR_OPERATOR_IN,
                    values: ["Northstar", "Acme"],
                  },
                  {
                    key: "/peripherals",
                    operator: SelectorOperator.SELECTOR_OPERATOR_CONTAINS_ALL,
                    itemSelector: {
                      matchExpressions: [
                        {
                          key: "/type",
                          operator: SelectorOperator.SELECTOR_OPERATOR_IN,
                          values: ["gpu"],
                        },
                      ],
                    },
                  },
                ],
              },
              labelSelector: {
                matchExpressions: [
                  {
                    key: "example.com/floor",
                    operator: SelectorOperator.SELECTOR_OPERATOR_GT,
                    values: [2],
                  },
                  {
                    key: "example.com/gpu",
                    operator: SelectorOperator.SELECTOR_OPERATOR_DOES_NOT_EXIST,
                  },
                ],
              },
            },
          ],
        },
        extensions: { "x-acme-extensions": { rollout: "canary" } },
      },
      parameters: {
        pollFrequency: {
          value: "120",
          targets: [{ pointer: "POLL_FREQUENCY", components: ["database"] }],
        },
        replicas: {
          value: 3,
          targets: [{ pointer: "app.replicas", components: ["database", "frontend"] }],
        },
        ratio: { value: 0.75, targets: [{ pointer: "app.ratio", components: ["frontend"] }] },
        debug: { value: false, targets: [{ pointer: "DEBUG", components: ["frontend"] }] },
        huge: {
          value: 18446744073709551615n,
          targets: [{ pointer: "HUGE", components: ["frontend"] }],
        },
        empty: { value: "", targets: [] },
      },
      extensions: { "x-wfm-extensions": { trace: "yes", "multi\nline": "a: b" } },
    },
  };
}

export function discoveryDocument(): TrustDiscoveryDocument {
  return {
    trustDomain: "factory.example",
    trustBundleUri: "https://mis.factory.example/.well-known/spiffe/bundle.json",
  };
}

export function spiffeBundle(): SpiffeBundle {
  return {
    spiffeSequence: 12n,
    spiffeRefreshHint: 86400n,
    keys: [
      { kty: "EC", crv: "P-256", x: "eA", y: "eQ", use: "x509-svid", x5c: ["MIIB"] },
      { kty: "RSA", n: "0vx", e: "AQAB", use: "jwt-svid", kid: "k1", x5c: [] },
    ],
  };
}
