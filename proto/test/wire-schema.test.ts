import { describe, expect, it } from "vitest";
import { parse as parseYamlText } from "yaml";
import {
  APP_ARCHITECTURES,
  BACKOFF_STRATEGIES,
  DEPLOYMENT_PROFILE_TYPES,
  DEPLOYMENT_STATES,
  DEVICE_ARCHITECTURES,
  type Decoded,
  decodeApplicationDeployment,
  decodeDeploymentStatus,
  decodeDeviceCapabilities,
  decodeDiscoveryDocument,
  decodeProblemDetail,
  decodeSpiffeBundle,
  decodeStateManifest,
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
  type SchemaCheck,
  schemaValidator,
  TRUST_API,
  WORKLOAD_API,
} from "./support/spec.js";
import * as gen from "./support/wire-generators.js";
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

/** SAMPLES_PER_TYPE generated values per message type (seeds 1..N; a failure names its seed). */
const SAMPLES_PER_TYPE = 150;

interface Generated<T> {
  schema: (name: string) => SchemaCheck;
  name: string;
  make: (rng: gen.Rng) => T;
  encode: (value: T) => Uint8Array;
  decode: (input: Uint8Array) => Decoded<T>;
  /** How a JSON Schema peer reads the body. */
  read: (bytes: Uint8Array) => unknown;
}

const readYaml = (bytes: Uint8Array) =>
  parseYamlText(new TextDecoder().decode(bytes), { intAsBigInt: false });

function generated<T>(g: Generated<T>): Generated<unknown> {
  return g as unknown as Generated<unknown>;
}

const GENERATED: Array<Generated<unknown>> = [
  generated({
    schema: wmSchema,
    name: "UnsignedAppStateManifest",
    make: gen.stateManifest,
    encode: encodeStateManifest,
    decode: decodeStateManifest,
    read: asJson,
  }),
  generated({
    schema: wmSchema,
    name: "DeploymentStatusManifest",
    make: gen.deploymentStatus,
    encode: encodeDeploymentStatus,
    decode: decodeDeploymentStatus,
    read: asJson,
  }),
  generated({
    schema: wmSchema,
    name: "DeviceCapabilitiesManifest",
    make: gen.deviceCapabilities,
    encode: encodeDeviceCapabilities,
    decode: decodeDeviceCapabilities,
    read: asJson,
  }),
  generated({
    schema: wmSchema,
    name: "ProblemDetail",
    make: gen.problemDetail,
    encode: encodeProblemDetail,
    decode: decodeProblemDetail,
    read: asJson,
  }),
  generated({
    schema: wmSchema,
    name: "appDeploymentManifest",
    make: gen.applicationDeployment,
    encode: encodeApplicationDeployment,
    decode: decodeApplicationDeployment,
    read: readYaml,
  }),
  generated({
    schema: trustSchema,
    name: "DiscoveryDocument",
    make: gen.discoveryDocument,
    encode: encodeDiscoveryDocument,
    decode: decodeDiscoveryDocument,
    read: asJson,
  }),
  generated({
    schema: trustSchema,
    name: "SpiffeBundle",
    make: gen.spiffeBundle,
    encode: encodeSpiffeBundle,
    decode: decodeSpiffeBundle,
    read: asJson,
  }),
  generated({
    schema: trustSchema,
    name: "ProblemDetail",
    make: gen.problemDetail,
    encode: encodeProblemDetail,
    decode: decodeProblemDetail,
    read: asJson,
  }),
];

describe(`${SAMPLES_PER_TYPE} generated values per message type: schema-valid and round-tripping`, () => {
  for (const g of GENERATED) {
    const api = g.schema === trustSchema ? "trust API" : "workload API";
    it(`${g.name} (${api})`, () => {
      const check = g.schema(g.name);
      for (let seed = 1; seed <= SAMPLES_PER_TYPE; seed++) {
        const value = g.make(new gen.Rng(seed));
        const bytes = g.encode(value);
        expect(check(g.read(bytes)), `seed ${seed}`).toEqual([]);
        const decoded = g.decode(bytes);
        expect(decoded.problems, `seed ${seed}`).toEqual([]);
        expect(decoded.value, `seed ${seed}`).toEqual(value);
      }
    });
  }

  it("the generator reaches every enum value, both bundle forms and 2^64-1", () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= SAMPLES_PER_TYPE; seed++) {
      const m = gen.stateManifest(new gen.Rng(seed));
      seen.add(m.bundle ? "bundle" : "null-bundle");
      if (m.manifestVersion === (1n << 64n) - 1n) seen.add("u64-max");
      const s = gen.deploymentStatus(new gen.Rng(seed));
      seen.add(`state:${DEPLOYMENT_STATES.toWire(s.status?.state ?? 0)}`);
      const c = gen.deviceCapabilities(new gen.Rng(seed));
      for (const cpu of c.properties?.cpus ?? [])
        seen.add(`arch:${DEVICE_ARCHITECTURES.toWire(cpu.architecture)}`);
      for (const p of c.properties?.peripherals ?? [])
        seen.add(`peripheral:${PERIPHERAL_TYPES.toWire(p.type)}`);
      for (const i of c.properties?.interfaces ?? [])
        seen.add(`interface:${INTERFACE_TYPES.toWire(i.type)}`);
      for (const v of Object.values(c.labels))
        seen.add(`label:${Array.isArray(v) ? `${typeof v[0]}[]` : typeof v}`);
      if (Object.keys(c.extensions).length > 0) seen.add("extensions");
      const p = gen.problemDetail(new gen.Rng(seed));
      seen.add(`backoff:${BACKOFF_STRATEGIES.toWire(p.backoffStrategy)}`);
      const d = gen.applicationDeployment(new gen.Rng(seed));
      seen.add(`profile:${d.spec?.deploymentProfile?.type}`);
      for (const rule of d.spec?.deploymentProfile?.deviceConstraints?.eligibilityRules ?? [])
        for (const e of rule.propertySelector?.matchExpressions ?? [])
          seen.add(`operator:${SELECTOR_OPERATORS.toWire(e.operator)}`);
      for (const a of d.spec?.deploymentProfile?.deviceConstraints?.capacityRequirements?.cpu
        ?.architectures ?? [])
        seen.add(`app-arch:${APP_ARCHITECTURES.toWire(a)}`);
    }
    const expected = [
      "bundle",
      "null-bundle",
      "u64-max",
      "extensions",
      ...DEPLOYMENT_STATES.wireValues.map((v) => `state:${v}`),
      ...DEVICE_ARCHITECTURES.wireValues.map((v) => `arch:${v}`),
      ...PERIPHERAL_TYPES.wireValues.map((v) => `peripheral:${v}`),
      ...INTERFACE_TYPES.wireValues.map((v) => `interface:${v}`),
      ...BACKOFF_STRATEGIES.wireValues.map((v) => `backoff:${v}`),
      ...SELECTOR_OPERATORS.wireValues.map((v) => `operator:${v}`),
      ...APP_ARCHITECTURES.wireValues.map((v) => `app-arch:${v}`),
      ...DEPLOYMENT_PROFILE_TYPES.map((v) => `profile:${v}`),
      "label:string",
      "label:number",
      "label:bigint",
      "label:boolean",
      "label:string[]",
      "label:number[]",
    ];
    expect(expected.filter((k) => !seen.has(k))).toEqual([]);
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
