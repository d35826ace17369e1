import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  api,
  BackoffStrategy,
  ComponentProperties,
  CpuArchitecture,
  DeploymentState,
  DeploymentStatusManifest,
  DeviceCapabilitiesManifest,
  InterfaceType,
  PeripheralType,
  ProblemDetail,
  SelectorOperator,
  UnsignedAppStateManifest,
  ValidationSchema,
} from "../src/index.js";

// These tests hold the generated TypeScript to the verbatim rc.3 OpenAPI: every REST operation
// has an rpc, every schema property a field with the same JSON name, every enum the spec's values,
// and the proto choices that matter on the wire (uint64 as bigint, optional presence) survive a
// binary round trip.

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const protoDir = join(repoRoot, "proto");
const specDir = process.env.MARGO_SPEC_DIR ?? join(repoRoot, "..", "shared", "margo-reference");
const U64_MAX = 2n ** 64n - 1n;

interface OpenApiSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, OpenApiSchema>;
  items?: OpenApiSchema;
  enum?: unknown[];
}
interface OpenApi {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, OpenApiSchema> };
}

function loadOpenApi(file: string): OpenApi {
  return parse(readFileSync(join(specDir, file), "utf8")) as OpenApi;
}

interface ImageField {
  name: string;
  jsonName: string;
}
interface ImageMessage {
  name: string;
  field?: ImageField[];
}
interface ImageMethod {
  name: string;
  serverStreaming?: boolean;
  options?: Record<string, { method: string; path: string }>;
}
interface ImageFile {
  package?: string;
  messageType?: ImageMessage[];
  service?: { name: string; method: ImageMethod[] }[];
}

/** The compiled descriptor set, straight from the .proto sources (custom options included). */
function buildImage(): ImageFile[] {
  const buf = join(repoRoot, "node_modules", ".bin", "buf");
  const out = execFileSync(buf, ["build", "-o", "-#format=json"], {
    cwd: protoDir,
    maxBuffer: 64 * 1024 * 1024,
  });
  return (JSON.parse(out.toString("utf8")) as { file: ImageFile[] }).file;
}

const image = buildImage();

function message(fullName: string): ImageMessage {
  const dot = fullName.lastIndexOf(".");
  const pkg = fullName.slice(0, dot);
  const name = fullName.slice(dot + 1);
  for (const file of image) {
    if (file.package !== pkg) continue;
    const found = file.messageType?.find((m) => m.name === name);
    if (found) return found;
  }
  throw new Error(`message ${fullName} not in the buf image`);
}

/** Names of enum members as the wire spells them, by the mechanical rule the codecs use. */
function wireValues(enumObject: Record<string, string | number>, prefix: string, pascal = false) {
  return Object.keys(enumObject)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNRECOGNIZED" && !k.endsWith("_UNSPECIFIED"))
    .map((k) => {
      expect(k.startsWith(`${prefix}_`), `${k} starts with ${prefix}_`).toBe(true);
      const words = k.slice(prefix.length + 1).toLowerCase();
      return pascal
        ? words
            .split("_")
            .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
            .join("")
        : words;
    })
    .sort();
}

describe("spec material", () => {
  it("is available to the tests", () => {
    expect(existsSync(join(specDir, "workload-management-api-1.0.0-rc.3.yaml"))).toBe(true);
  });
});

describe("WorkloadManagementService covers the rc.3 REST operations", () => {
  const wm = loadOpenApi("workload-management-api-1.0.0-rc.3.yaml");
  const service = image
    .flatMap((f) => (f.package === "margo.api.v1" ? (f.service ?? []) : []))
    .find((s) => s.name === "WorkloadManagementService");
  const definition = api.WorkloadManagementServiceService as Record<
    string,
    { path: string; responseStream: boolean }
  >;

  it("maps every OpenAPI operation to exactly one rpc and no rpc to a missing operation", () => {
    const httpMethods = new Set(["get", "put", "post", "delete", "patch", "head", "options"]);
    const restOps = Object.entries(wm.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((m) => httpMethods.has(m))
          .map((m) => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    expect(restOps).toHaveLength(6);

    const routed = (service?.method ?? [])
      .map((m) => m.options?.["[margo.api.v1.http_route]"])
      .filter((r) => r !== undefined)
      .map((r) => `${r.method} ${r.path}`)
      .sort();
    expect(routed).toEqual(restOps);
  });

  it("generates a grpc-js method for every rpc, streaming only where declared", () => {
    const methods = service?.method ?? [];
    expect(methods.length).toBeGreaterThan(0);
    const generatedPaths = Object.values(definition)
      .map((d) => d.path)
      .sort();
    expect(generatedPaths).toEqual(
      methods.map((m) => `/margo.api.v1.WorkloadManagementService/${m.name}`).sort(),
    );
    for (const m of methods) {
      const key = m.name.charAt(0).toLowerCase() + m.name.slice(1);
      expect(definition[key]?.responseStream, m.name).toBe(m.serverStreaming === true);
      // Only the push-style watch may lack a REST route.
      if (m.options?.["[margo.api.v1.http_route]"] === undefined) {
        expect(m.name).toBe("WatchManifest");
      }
    }
  });

  it("keeps exact body bytes in content-addressed responses", () => {
    // env=node: bytes fields are Buffers.
    const bytes = Buffer.from([0x69, 0x64, 0x3a, 0x20, 0x0d, 0x0a, 0xff]);
    const def = api.WorkloadManagementServiceService;
    const wire = def.getDeployment.responseSerialize({
      notModified: false,
      body: bytes,
      etag: '"sha256:00"',
      contentType: "application/yaml",
    });
    expect([...def.getDeployment.responseDeserialize(wire).body]).toEqual([...bytes]);
  });
});

describe("message fields carry the OpenAPI JSON property names", () => {
  const wm = loadOpenApi("workload-management-api-1.0.0-rc.3.yaml");
  const tb = loadOpenApi("trust-bundle-api-1.0.0-rc.3.yaml");
  const s = wm.components.schemas;

  function resolve(schema: OpenApiSchema | undefined): OpenApiSchema {
    if (schema?.$ref) {
      const name = schema.$ref.replace("#/components/schemas/", "");
      return resolve(s[name]);
    }
    if (!schema) throw new Error("missing schema");
    return schema;
  }
  function props(schema: OpenApiSchema | undefined): string[] {
    return Object.keys(resolve(schema).properties ?? {}).sort();
  }
  function fields(fullName: string, ignore: string[] = []): string[] {
    return (message(fullName).field ?? [])
      .map((f) => f.jsonName)
      .filter((n) => !ignore.includes(n))
      .sort();
  }
  const m = (name: string) => `margo.model.v1.${name}`;
  const caps = resolve(s.DeviceCapabilitiesManifest).properties ?? {};
  const capProps = caps.properties;
  const status = resolve(s.DeploymentStatusManifest).properties ?? {};
  const spec = resolve(s.appDeploymentSpec).properties ?? {};
  const profile = resolve(spec.deploymentProfile);
  const component = resolve(resolve(profile.properties?.components).items);
  const problem = resolve(s.ProblemDetail).properties ?? {};
  const constraints = resolve(s.DeviceConstraints).properties ?? {};
  const rule = resolve(resolve(constraints.eligibilityRules).items);

  // [OpenAPI schema, proto message, proto-only fields (extension bags)]
  const pairs: [string, OpenApiSchema | undefined, string, string[]][] = [
    ["UnsignedAppStateManifest", s.UnsignedAppStateManifest, m("UnsignedAppStateManifest"), []],
    ["DeploymentBundleRef", s.DeploymentBundleRef, m("DeploymentBundleRef"), []],
    ["DeploymentManifestRef", s.DeploymentManifestRef, m("DeploymentManifestRef"), []],
    [
      "DeviceCapabilitiesManifest",
      s.DeviceCapabilitiesManifest,
      m("DeviceCapabilitiesManifest"),
      ["extensions"],
    ],
    ["DeviceCapabilitiesManifest.properties", capProps, m("DeviceProperties"), []],
    ["cpus[]", resolve(capProps).properties?.cpus?.items, m("DeviceCpu"), []],
    ["DevicePeripheral", s.DevicePeripheral, m("DevicePeripheral"), []],
    [
      "DeviceCommunicationInterface",
      s.DeviceCommunicationInterface,
      m("DeviceCommunicationInterface"),
      [],
    ],
    ["DeploymentStatusManifest", s.DeploymentStatusManifest, m("DeploymentStatusManifest"), []],
    ["DeploymentStatusManifest.status", status.status, m("DeploymentStatus"), []],
    ["status.error", resolve(status.status).properties?.error, m("StatusError"), []],
    ["ComponentStatus", s.ComponentStatus, m("ComponentStatus"), []],
    ["ProblemDetail", s.ProblemDetail, m("ProblemDetail"), ["extensionMembers"]],
    ["ProblemDetail.errors[]", problem.errors?.items, m("ProblemFieldError"), []],
    ["appDeploymentManifest", s.appDeploymentManifest, m("ApplicationDeployment"), []],
    ["appDeploymentMetadata", s.appDeploymentMetadata, m("ApplicationDeploymentMetadata"), []],
    ["appDeploymentSpec", s.appDeploymentSpec, m("ApplicationDeploymentSpec"), ["extensions"]],
    ["appDeploymentProfile", profile, m("ApplicationDeploymentProfile"), ["extensions"]],
    ["profile component", component, m("Component"), ["extensions"]],
    ["component properties", component.properties?.properties, m("ComponentProperties"), []],
    ["appParameterValue", s.appParameterValue, m("Parameter"), []],
    ["appParameterTarget", s.appParameterTarget, m("ParameterTarget"), []],
    ["DeviceConstraints", s.DeviceConstraints, m("DeviceConstraints"), []],
    ["CapacityRequirements", s.CapacityRequirements, m("CapacityRequirements"), []],
    ["DeploymentCpuRequirement", s.DeploymentCpuRequirement, m("CpuRequirement"), []],
    ["EligibilityRule", rule, m("EligibilityRule"), []],
    ["Selector", s.Selector, m("Selector"), []],
    ["MatchExpression", s.MatchExpression, m("MatchExpression"), []],
    ["DiscoveryDocument", tb.components.schemas.DiscoveryDocument, m("TrustDiscoveryDocument"), []],
  ];

  it.each(pairs)("%s", (_label, schema, protoMessage, protoOnly) => {
    expect(fields(protoMessage, protoOnly)).toEqual(props(schema));
  });

  it("names SPIFFE bundle members so the snake_case wire names map mechanically", () => {
    // The SPIFFE bundle schema is open (additionalProperties) in the OpenAPI; its example fixes
    // the member names.
    const names = (message(m("SpiffeBundle")).field ?? []).map((f) => f.name).sort();
    expect(names).toEqual(["keys", "spiffe_refresh_hint", "spiffe_sequence"]);
  });
});

describe("Application Description messages carry the LinkML attribute names", () => {
  interface LinkmlClass {
    is_a?: string;
    attributes?: Record<string, unknown>;
    slots?: string[];
  }
  const linkml = parse(
    readFileSync(join(specDir, "application-description.linkml.yaml"), "utf8"),
  ) as { classes: Record<string, LinkmlClass> };
  const classes = linkml.classes;
  /** Attribute and slot names of a class; the extension slot becomes our `extensions` map. */
  function attrs(...names: string[]): string[] {
    const out = new Set<string>();
    for (const name of names) {
      const c = classes[name];
      if (!c) throw new Error(`LinkML class ${name} missing`);
      for (const a of Object.keys(c.attributes ?? {})) out.add(a);
      for (const slot of c.slots ?? []) {
        out.add(slot === "x-placeholder-extensions" ? "extensions" : slot);
      }
    }
    return [...out].sort();
  }
  const fields = (name: string) =>
    (message(`margo.model.v1.${name}`).field ?? []).map((f) => f.jsonName).sort();

  // [LinkML classes merged into one message, proto message, attributes not modelled as fields]
  const pairs: [string[], string, string[]][] = [
    [["ApplicationDescription"], "ApplicationDescription", []],
    [["Metadata"], "ApplicationDescriptionMetadata", []],
    [["Catalog"], "Catalog", []],
    [["ApplicationMetadata"], "ApplicationMetadata", []],
    [["Author"], "Author", []],
    [["Organization"], "Organization", []],
    [["DeploymentProfile"], "DeploymentProfile", []],
    [["Component"], "Component", []],
    [["ComponentProperties"], "ComponentProperties", []],
    // The parameter name is the map key in `parameters`, not a field.
    [["Parameter"], "Parameter", ["name"]],
    [["Target"], "ParameterTarget", []],
    [["Configuration"], "Configuration", []],
    [["Section"], "ConfigurationSection", []],
    [["Setting"], "Setting", []],
    [["DeviceConstraints"], "DeviceConstraints", []],
    [["CapacityRequirements"], "CapacityRequirements", []],
    [["CPU"], "CpuRequirement", []],
  ];

  it.each(pairs)("%j", (linkmlClasses, protoMessage, notFields) => {
    expect(fields(protoMessage)).toEqual(
      attrs(...linkmlClasses).filter((a) => !notFields.includes(a)),
    );
  });

  it("ValidationSchema flattens every Schema subtype", () => {
    const subtypes = Object.entries(classes)
      .filter(([, c]) => c.is_a === "Schema")
      .map(([name]) => name);
    expect(subtypes.length).toBe(5);
    // min/maxValue are oneofs split by number kind (integer vs double subtype).
    const names = fields("ValidationSchema").map((f) =>
      f.replace(/^(min|max)(Integer|Double)$/, "$1Value"),
    );
    expect([...new Set(names)].sort()).toEqual(attrs("Schema", ...subtypes));
  });
});

describe("enum values map mechanically to the spec's strings", () => {
  const wm = loadOpenApi("workload-management-api-1.0.0-rc.3.yaml");
  const s = wm.components.schemas;
  const enumOf = (schema: OpenApiSchema | undefined) =>
    ((schema?.enum ?? []) as string[]).map(String).sort();

  it("DeploymentState <-> status state", () => {
    expect(wireValues(DeploymentState, "DEPLOYMENT_STATE")).toEqual(
      enumOf(s.ComponentStatus?.properties?.state),
    );
  });
  it("PeripheralType <-> DevicePeripheral.type", () => {
    expect(wireValues(PeripheralType, "PERIPHERAL_TYPE")).toEqual(
      enumOf(s.DevicePeripheral?.properties?.type),
    );
  });
  it("InterfaceType <-> DeviceCommunicationInterface.type", () => {
    expect(wireValues(InterfaceType, "INTERFACE_TYPE")).toEqual(
      enumOf(s.DeviceCommunicationInterface?.properties?.type),
    );
  });
  it("BackoffStrategy <-> ProblemDetail.backoffStrategy", () => {
    expect(wireValues(BackoffStrategy, "BACKOFF_STRATEGY")).toEqual(
      enumOf(s.ProblemDetail?.properties?.backoffStrategy),
    );
  });
  it("SelectorOperator <-> MatchExpression.operator (PascalCase)", () => {
    expect(wireValues(SelectorOperator, "SELECTOR_OPERATOR", true)).toEqual(
      enumOf(s.MatchExpression?.properties?.operator),
    );
  });
  it("CpuArchitecture covers application and device architectures", () => {
    expect(wireValues(CpuArchitecture, "CPU_ARCHITECTURE")).toEqual(
      enumOf(s.DeploymentCpuRequirement?.properties?.architectures?.items),
    );
  });
});

describe("uint64 fields are bigint and keep 2^64-1 through binary encoding", () => {
  it("manifestVersion and sizeBytes", () => {
    const manifest = UnsignedAppStateManifest.fromPartial({
      manifestVersion: U64_MAX,
      bundle: {
        mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
        digest: `sha256:${"a".repeat(64)}`,
        sizeBytes: U64_MAX - 1n,
        url: `/api/v1/bundles/sha256:${"a".repeat(64)}`,
      },
      deployments: [{ deploymentId: "d", digest: "x", url: "u", sizeBytes: 2n ** 53n + 1n }],
    });
    const back = UnsignedAppStateManifest.decode(
      UnsignedAppStateManifest.encode(manifest).finish(),
    );
    expect(typeof back.manifestVersion).toBe("bigint");
    expect(back.manifestVersion).toBe(U64_MAX);
    expect(back.bundle?.sizeBytes).toBe(U64_MAX - 1n);
    expect(back.deployments[0]?.sizeBytes).toBe(9007199254740993n);
  });

  it("adoptedManifestVersion, also through the grpc-js serializers", () => {
    const status = DeploymentStatusManifest.fromPartial({
      deploymentId: "0b0e8a52-6d4e-4b8e-9a53-1c0b5f0f2d11",
      adoptedManifestVersion: U64_MAX,
      status: { state: DeploymentState.DEPLOYMENT_STATE_INSTALLED },
    });
    const def = api.WorkloadManagementServiceService.reportStatus;
    const back = def.requestDeserialize(
      def.requestSerialize(api.ReportStatusRequest.fromPartial({ deploymentId: "x", status })),
    );
    expect(back.status?.adoptedManifestVersion).toBe(U64_MAX);
    expect(back.status?.status?.state).toBe(DeploymentState.DEPLOYMENT_STATE_INSTALLED);
  });

  it("integer schema bounds keep their int64 kind in the oneof", () => {
    const schema = ValidationSchema.fromPartial({
      name: "port",
      dataType: "integer",
      minValue: { $case: "minInteger", value: -(2n ** 63n) },
      maxValue: { $case: "maxDouble", value: 0.5 },
    });
    const back = ValidationSchema.decode(ValidationSchema.encode(schema).finish());
    expect(back.minValue).toEqual({ $case: "minInteger", value: -(2n ** 63n) });
    expect(back.maxValue).toEqual({ $case: "maxDouble", value: 0.5 });
  });
});

describe("optional fields keep absence", () => {
  const roundTrip = <T>(codec: {
    encode(m: T): { finish(): Uint8Array };
    decode(b: Uint8Array): T;
  }) => {
    return (m: T) => codec.decode(codec.encode(m).finish());
  };

  it("wait: absent, false and true stay distinct", () => {
    const rt = roundTrip(ComponentProperties);
    const base = { repository: "oci://r/c", revision: "1.0.0" };
    expect(rt(ComponentProperties.fromPartial(base)).wait).toBeUndefined();
    expect(rt(ComponentProperties.fromPartial({ ...base, wait: false })).wait).toBe(false);
    expect(rt(ComponentProperties.fromPartial({ ...base, wait: true })).wait).toBe(true);
    expect(rt(ComponentProperties.fromPartial({ ...base, timeout: "" })).timeout).toBe("");
  });

  it("otelCollector absent (non-hosting gateway) differs from false", () => {
    const rt = roundTrip(DeviceCapabilitiesManifest);
    const props = { id: "gw", vendor: "v", modelNumber: "m", serialNumber: "s" };
    const absent = rt(DeviceCapabilitiesManifest.fromPartial({ properties: props }));
    expect(absent.properties?.otelCollector).toBeUndefined();
    expect(absent.properties?.memory).toBeUndefined();
    const off = rt(
      DeviceCapabilitiesManifest.fromPartial({ properties: { ...props, otelCollector: false } }),
    );
    expect(off.properties?.otelCollector).toBe(false);
  });

  it("retryable and a null bundle survive", () => {
    const rtp = roundTrip(ProblemDetail);
    const p = { type: "about:blank", title: "Not Found", status: 404 };
    expect(rtp(ProblemDetail.fromPartial(p)).retryable).toBeUndefined();
    expect(rtp(ProblemDetail.fromPartial({ ...p, retryable: false })).retryable).toBe(false);
    const rtm = roundTrip(UnsignedAppStateManifest);
    const empty = rtm(UnsignedAppStateManifest.fromPartial({ manifestVersion: 1n }));
    expect(empty.bundle).toBeUndefined();
    expect(empty.deployments).toEqual([]);
  });

  it("labels, extensions and parameter values keep their JSON types", () => {
    const caps = DeviceCapabilitiesManifest.fromPartial({
      properties: { id: "d", vendor: "v", modelNumber: "m", serialNumber: "s" },
      labels: { "example.com/zone": "a", "example.com/n": 3, "example.com/ok": true, list: [1, 2] },
      extensions: { "x-acme-extensions": { nested: { deep: [true, null, "s"] } } },
    });
    const back = roundTrip(DeviceCapabilitiesManifest)(caps);
    expect(back.labels).toEqual({
      "example.com/zone": "a",
      "example.com/n": 3,
      "example.com/ok": true,
      list: [1, 2],
    });
    expect(back.extensions["x-acme-extensions"]).toEqual({ nested: { deep: [true, null, "s"] } });
  });
});
