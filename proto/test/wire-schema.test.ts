import { describe, expect, it } from "vitest";
import { parse as parseYamlText } from "yaml";
import {
  APP_ARCHITECTURES,
  BACKOFF_STRATEGIES,
  DEPLOYMENT_PROFILE_TYPES,
  DEPLOYMENT_STATES,
  DEVICE_ARCHITECTURES,
  encodeApplicationDeployment,
  encodeDeploymentStatus,
  encodeDeviceCapabilities,
  encodeDiscoveryDocument,
  encodeProblemDetail,
  encodeSpiffeBundle,
  encodeStateManifest,
  INTERFACE_TYPES,
  PERIPHERAL_TYPES,
  SELECTOR_OPERATORS,
  SUPPORTED_DEPLOYMENT_TYPES,
  SUPPORTED_RUNTIMES,
} from "../src/wire/index.js";
import {
  loadOpenApi,
  type OpenApi,
  patchWorkloadQuirks,
  schemaValidator,
  TRUST_API,
  WORKLOAD_API,
} from "./support/spec.js";
import {
  discoveryDocument,
  emptyManifest,
  fullCapabilities,
  fullDeployment,
  fullManifest,
  fullProblem,
  fullStatus,
  gatewayCapabilities,
  spiffeBundle,
} from "./wire-samples.js";

const workload = patchWorkloadQuirks(loadOpenApi(WORKLOAD_API));
const trust = loadOpenApi(TRUST_API);
const wmSchema = schemaValidator(workload, "https://margo.test/workload-management-api.json");
const trustSchema = schemaValidator(trust, "https://margo.test/trust-bundle-api.json");

/** asJson reads encoder output the way any JSON peer would (JSON.parse), for ajv. */
function asJson(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes));
}

describe("encoder output validates against the verbatim rc.3 OpenAPI schemas", () => {
  const cases: Array<[string, string, () => unknown]> = [
    ["UnsignedAppStateManifest", "full", () => asJson(encodeStateManifest(fullManifest()))],
    ["UnsignedAppStateManifest", "empty", () => asJson(encodeStateManifest(emptyManifest()))],
    ["DeploymentStatusManifest", "full", () => asJson(encodeDeploymentStatus(fullStatus()))],
    [
      "DeviceCapabilitiesManifest",
      "hosting",
      () => asJson(encodeDeviceCapabilities(fullCapabilities())),
    ],
    [
      "DeviceCapabilitiesManifest",
      "gateway",
      () => asJson(encodeDeviceCapabilities(gatewayCapabilities())),
    ],
    ["ProblemDetail", "full", () => asJson(encodeProblemDetail(fullProblem()))],
    [
      "appDeploymentManifest",
      "full",
      () =>
        parseYamlText(new TextDecoder().decode(encodeApplicationDeployment(fullDeployment())), {
          intAsBigInt: false,
        }),
    ],
  ];
  for (const [schema, label, body] of cases) {
    it(`${schema} (${label})`, () => {
      expect(wmSchema(schema)(body())).toEqual([]);
    });
  }

  it("trust API: DiscoveryDocument, SpiffeBundle and ProblemDetail", () => {
    expect(
      trustSchema("DiscoveryDocument")(asJson(encodeDiscoveryDocument(discoveryDocument()))),
    ).toEqual([]);
    expect(trustSchema("SpiffeBundle")(asJson(encodeSpiffeBundle(spiffeBundle())))).toEqual([]);
    expect(trustSchema("ProblemDetail")(asJson(encodeProblemDetail(fullProblem())))).toEqual([]);
  });

  it("the schema check can fail: a mutated body is rejected by the same validator", () => {
    const body = asJson(encodeDeploymentStatus(fullStatus())) as { status: { state: string } };
    body.status.state = "Installed";
    expect(wmSchema("DeploymentStatusManifest")(body).map((e) => e.keyword)).toContain("enum");
    const caps = asJson(encodeDeviceCapabilities(fullCapabilities())) as Record<string, unknown>;
    caps.unexpected = 1;
    expect(wmSchema("DeviceCapabilitiesManifest")(caps).map((e) => e.keyword)).toContain(
      "additionalProperties",
    );
  });

  it("the verbatim schema refuses an empty label array that the codec accepts by decision", () => {
    // labels.additionalProperties is a oneOf whose two array branches both match [], so JSON
    // Schema rejects it although the description allows "an array of strings or numbers". The
    // codec accepts [] with a wire.label-empty-array warning (device-capabilities.ts), so
    // generated samples below never carry an empty label array.
    const caps = fullCapabilities();
    caps.labels = { e: [] };
    const body = asJson(encodeDeviceCapabilities(caps));
    expect(wmSchema("DeviceCapabilitiesManifest")(body).map((e) => e.keyword)).toContain("oneOf");
    caps.labels = { e: ["x"] };
    expect(wmSchema("DeviceCapabilitiesManifest")(asJson(encodeDeviceCapabilities(caps)))).toEqual(
      [],
    );
  });

  it("the in-memory patches touch only the two documented quirks", () => {
    const raw = loadOpenApi(WORKLOAD_API).components.schemas;
    expect(raw.UnsignedAppStateManifest?.required).toEqual([
      "manifestVersion",
      "bundle",
      "bundle.mediaType",
      "bundle.digest",
      "bundle.url",
      "deployments",
    ]);
    expect(raw.appDeploymentMetadata?.required).toContain("annotations");
    expect(
      ((raw.appDeploymentMetadata?.properties ?? {}) as Record<string, unknown>).annotations,
    ).toBeUndefined();
    expect(workload.components.schemas.UnsignedAppStateManifest?.required).toEqual([
      "manifestVersion",
      "bundle",
      "deployments",
    ]);
  });
});

/** enumAt walks a path of property names / "items" into a schema and returns its enum list. */
function enumAt(api: OpenApi, schema: string, ...path: string[]): string[] {
  let node: unknown = api.components.schemas[schema];
  for (const step of path) {
    const n = node as Record<string, unknown>;
    node = step === "items" ? n.items : (n.properties as Record<string, unknown>)[step];
  }
  return (node as { enum: string[] }).enum;
}

describe("enum tables match the OpenAPI enum lists exactly", () => {
  it.each([
    [
      "deployment state",
      DEPLOYMENT_STATES.wireValues,
      enumAt(workload, "ComponentStatus", "state"),
    ],
    [
      "status state",
      DEPLOYMENT_STATES.wireValues,
      enumAt(workload, "DeploymentStatusManifest", "status", "state"),
    ],
    [
      "device architecture",
      DEVICE_ARCHITECTURES.wireValues,
      enumAt(workload, "DeviceCapabilitiesManifest", "properties", "cpus", "items", "architecture"),
    ],
    [
      "app architecture",
      APP_ARCHITECTURES.wireValues,
      enumAt(workload, "DeploymentCpuRequirement", "architectures", "items"),
    ],
    ["peripheral", PERIPHERAL_TYPES.wireValues, enumAt(workload, "DevicePeripheral", "type")],
    [
      "interface",
      INTERFACE_TYPES.wireValues,
      enumAt(workload, "DeviceCommunicationInterface", "type"),
    ],
    ["operator", SELECTOR_OPERATORS.wireValues, enumAt(workload, "MatchExpression", "operator")],
    [
      "backoff",
      BACKOFF_STRATEGIES.wireValues,
      enumAt(workload, "ProblemDetail", "backoffStrategy"),
    ],
    [
      "runtimes",
      [...SUPPORTED_RUNTIMES],
      enumAt(workload, "DeviceCapabilitiesManifest", "properties", "supportedRuntimes", "items"),
    ],
    [
      "deployment types",
      [...SUPPORTED_DEPLOYMENT_TYPES],
      enumAt(
        workload,
        "DeviceCapabilitiesManifest",
        "properties",
        "supportedDeploymentTypes",
        "items",
      ),
    ],
    [
      "profile type",
      [...DEPLOYMENT_PROFILE_TYPES],
      enumAt(workload, "appDeploymentProfile", "type"),
    ],
  ])("%s", (_name, ours, spec) => {
    expect([...ours].sort()).toEqual([...spec].sort());
  });
});
