import { describe, expect, it } from "vitest";
import { hasErrors, type Problem, ValidationError } from "../src/problem.js";
import {
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
} from "../src/wire/index.js";
import { exampleOf, loadOpenApi, readSpecFile, TRUST_API, WORKLOAD_API } from "./support/spec.js";
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
  U64_MAX,
} from "./wire-samples.js";

interface Codec<T> {
  decode(input: Uint8Array | string): Decoded<T>;
  encode(value: T): Uint8Array;
}

const codecs = {
  UnsignedAppStateManifest: { decode: decodeStateManifest, encode: encodeStateManifest },
  DeploymentStatusManifest: { decode: decodeDeploymentStatus, encode: encodeDeploymentStatus },
  DeviceCapabilitiesManifest: {
    decode: decodeDeviceCapabilities,
    encode: encodeDeviceCapabilities,
  },
  ProblemDetail: { decode: decodeProblemDetail, encode: encodeProblemDetail },
  appDeploymentManifest: {
    decode: decodeApplicationDeployment,
    encode: encodeApplicationDeployment,
  },
  DiscoveryDocument: { decode: decodeDiscoveryDocument, encode: encodeDiscoveryDocument },
  SpiffeBundle: { decode: decodeSpiffeBundle, encode: encodeSpiffeBundle },
} as const;

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const errorsOf = (problems: Problem[]) => problems.filter((p) => p.severity === "error");

/**
 * expectStable checks the round-trip laws on one input: it decodes without errors,
 * decode(encode(decode(x))) equals decode(x), and encode is a fixed point on its own output.
 */
function expectStable<T>(codec: Codec<T>, input: Uint8Array | string): T {
  const first = codec.decode(input);
  expect(errorsOf(first.problems)).toEqual([]);
  const value = first.value as T;
  const bytes = codec.encode(value);
  const second = codec.decode(bytes);
  expect(second.problems).toEqual([]);
  expect(second.value).toEqual(value);
  expect(text(codec.encode(second.value as T))).toBe(text(bytes));
  return value;
}

/** Every example/examples annotation in the OpenAPI, composed into bodies per schema. */
function specExamples(file: string): Array<[string, unknown]> {
  const api = loadOpenApi(file);
  const out: Array<[string, unknown]> = [];
  for (const [name, schema] of Object.entries(api.components.schemas)) {
    const example = exampleOf(schema);
    if (example !== undefined && typeof example === "object") out.push([name, example]);
  }
  // Media-type examples in paths (none in rc.3, but a later file may add them).
  for (const ops of Object.values(api.paths) as Array<Record<string, Record<string, unknown>>>) {
    for (const op of Object.values(ops)) {
      const bodies = [
        op.requestBody,
        ...Object.values((op.responses ?? {}) as Record<string, unknown>),
      ];
      for (const body of bodies as Array<{
        content?: Record<string, { schema?: { $ref?: string }; example?: unknown }>;
      }>) {
        for (const media of Object.values(body?.content ?? {})) {
          const ref = media.schema?.$ref?.split("/").pop();
          if (ref && media.example !== undefined) out.push([ref, media.example]);
        }
      }
    }
  }
  return out;
}

describe("the spec's own examples decode and round-trip stably", () => {
  const examples = [...specExamples(WORKLOAD_API), ...specExamples(TRUST_API)];

  it("finds the rc.3 examples (ProblemDetail in both files, DiscoveryDocument, SpiffeBundle)", () => {
    expect(examples.map(([name]) => name).sort()).toEqual([
      "DiscoveryDocument",
      "ProblemDetail",
      "ProblemDetail",
      "SpiffeBundle",
    ]);
  });

  for (const [name, example] of examples) {
    it(`${name} example`, () => {
      const codec = codecs[name as keyof typeof codecs] as Codec<unknown> | undefined;
      expect(codec, `no codec for ${name}`).toBeDefined();
      expectStable(codec as Codec<unknown>, JSON.stringify(example));
    });
  }
});

describe("examples/gateway-directed.yaml (legacy Compose coordinates)", () => {
  const verbatim = readSpecFile("examples/gateway-directed.yaml");

  it("gives named problems, not a crash: rc.3 needs repository/revision (the OpenAPI wins)", () => {
    const { value, problems } = decodeApplicationDeployment(verbatim);
    expect(value).toBeUndefined();
    const at = "/spec/deploymentProfile/components/0/properties";
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          rule: "wire.required",
          pointer: `${at}/repository`,
          severity: "error",
        }),
        expect.objectContaining({
          rule: "wire.required",
          pointer: `${at}/revision`,
          severity: "error",
        }),
        expect.objectContaining({ rule: "wire.legacy-member", pointer: `${at}/packageLocation` }),
        expect.objectContaining({ rule: "wire.legacy-member", pointer: `${at}/keyLocation` }),
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it("round-trips stably once its component uses rc.3 OCI coordinates", () => {
    const rc3 = verbatim
      .toString("utf8")
      .replace(/ *keyLocation: .*\n/, "")
      .replace(
        /packageLocation: .*/,
        "repository: oci://registry.example.com/digitron\n                revision: 1.0.0",
      );
    const value = expectStable(codecs.appDeploymentManifest, rc3);
    expect(value.metadata?.deviceId).toBe("gateway-01/edge-01");
    // The quoted "120" stays a string: parameter values keep their YAML/JSON type.
    expect(value.spec?.parameters.pollFrequency?.value).toBe("120");
    expect(Object.keys(value.spec?.parameters ?? {})).toHaveLength(8);
  });
});

describe("model values survive encode -> decode unchanged", () => {
  const samples: Array<[keyof typeof codecs, string, () => unknown]> = [
    ["UnsignedAppStateManifest", "full", fullManifest],
    ["UnsignedAppStateManifest", "empty", emptyManifest],
    ["DeploymentStatusManifest", "full", fullStatus],
    ["DeviceCapabilitiesManifest", "hosting", fullCapabilities],
    ["DeviceCapabilitiesManifest", "gateway", gatewayCapabilities],
    ["ProblemDetail", "full", fullProblem],
    ["appDeploymentManifest", "full", fullDeployment],
    ["DiscoveryDocument", "full", discoveryDocument],
    ["SpiffeBundle", "full", spiffeBundle],
  ];
  for (const [name, label, make] of samples) {
    it(`${name} (${label})`, () => {
      const codec = codecs[name] as Codec<unknown>;
      const bytes = codec.encode(make());
      const { value, problems } = codec.decode(bytes);
      expect(problems).toEqual([]);
      expect(value).toEqual(make());
      expectStable(codec, bytes);
    });
  }

  it("writes bundle: null, never omits it, and lowercases the bundle media type", () => {
    expect(text(encodeStateManifest(emptyManifest()))).toBe(
      '{"bundle":null,"deployments":[],"manifestVersion":1}',
    );
    const m = fullManifest();
    if (m.bundle) m.bundle.mediaType = "Application/VND.margo.bundle.v1+tar+gzip";
    expect(text(encodeStateManifest(m))).toContain(
      '"mediaType":"application/vnd.margo.bundle.v1+tar+gzip"',
    );
  });

  it("writes lowercase states at deployment and component level", () => {
    const body = JSON.parse(text(encodeDeploymentStatus(fullStatus())));
    expect(body.status.state).toBe("failed");
    expect(body.components.map((c: { state: string }) => c.state)).toEqual([
      "installed",
      "failed",
      "removed",
    ]);
  });

  it("flattens extensions into the capabilities root and collects unknown ones back", () => {
    const body = JSON.parse(text(encodeDeviceCapabilities(fullCapabilities())));
    expect(Object.keys(body).sort()).toEqual([
      "labels",
      "properties",
      "x-acme-extensions",
      "x-zeta-9-extensions",
    ]);
    const withNew = { ...body, "x-brand-new-extensions": { anything: [1, { deep: true }] } };
    const decoded = decodeDeviceCapabilities(JSON.stringify(withNew));
    expect(decoded.problems).toEqual([]);
    expect(decoded.value?.extensions["x-brand-new-extensions"]).toEqual({
      anything: [1, { deep: true }],
    });
  });

  it("flattens ApplicationDeployment extensions at spec, deploymentProfile and components", () => {
    const yaml = text(encodeApplicationDeployment(fullDeployment()));
    expect(yaml).toMatch(/^ {2}x-wfm-extensions:/m);
    expect(yaml).toMatch(/^ {4}x-acme-extensions:\n {6}rollout: canary/m);
    expect(yaml).toMatch(/^ {8}x-acme-extensions:\n {10}priority: 1/m);
  });

  it("keeps parameter JSON types: string, integer, double, boolean, 2^64-1", () => {
    const yaml = text(encodeApplicationDeployment(fullDeployment()));
    expect(yaml).toContain('value: "120"');
    expect(yaml).toContain("value: 3\n");
    expect(yaml).toContain("value: 0.75\n");
    expect(yaml).toContain("value: false\n");
    expect(yaml).toContain("value: 18446744073709551615\n");
    const params = decodeApplicationDeployment(yaml).value?.spec?.parameters ?? {};
    expect([
      params.pollFrequency?.value,
      params.replicas?.value,
      params.ratio?.value,
      params.debug?.value,
    ]).toEqual(["120", 3, 0.75, false]);
    expect(params.huge?.value).toBe(U64_MAX);
  });

  it("is deterministic: equal content in a different insertion order gives equal bytes", () => {
    const a = fullDeployment();
    const b = fullDeployment();
    if (b.spec) b.spec.parameters = Object.fromEntries(Object.entries(b.spec.parameters).reverse());
    expect(text(encodeApplicationDeployment(b))).toBe(text(encodeApplicationDeployment(a)));
    const c = fullCapabilities();
    c.labels = Object.fromEntries(Object.entries(c.labels).reverse());
    expect(text(encodeDeviceCapabilities(c))).toBe(
      text(encodeDeviceCapabilities(fullCapabilities())),
    );
  });
});

describe("uint64 members keep 2^64-1 exactly and reject 2^64 and 0", () => {
  const MAX = "18446744073709551615";
  const OVER = "18446744073709551616";
  const bundle = (size: string) =>
    `{"mediaType":"application/vnd.margo.bundle.v1+tar+gzip","digest":"sha256:${"a".repeat(64)}","sizeBytes":${size},"url":"/api/v1/bundles/sha256:${"a".repeat(64)}"}`;
  const ref = (size: string) =>
    `{"deploymentId":"d","digest":"sha256:${"b".repeat(64)}","url":"/api/v1/deployments/d/sha256:${"b".repeat(64)}","sizeBytes":${size}}`;
  const manifest = (version: string, bundleSize = "1", refSize = "1") =>
    `{"manifestVersion":${version},"bundle":${bundle(bundleSize)},"deployments":[${ref(refSize)}]}`;
  const status = (version: string) =>
    `{"deploymentId":"d","adoptedManifestVersion":${version},"status":{"state":"installed"},"components":[]}`;

  const cases: Array<[string, Codec<unknown>, (v: string) => string, string]> = [
    ["manifestVersion", codecs.UnsignedAppStateManifest, (v) => manifest(v), "/manifestVersion"],
    [
      "bundle.sizeBytes",
      codecs.UnsignedAppStateManifest,
      (v) => manifest("1", v),
      "/bundle/sizeBytes",
    ],
    [
      "deployments[].sizeBytes",
      codecs.UnsignedAppStateManifest,
      (v) => manifest("1", "1", v),
      "/deployments/0/sizeBytes",
    ],
    ["adoptedManifestVersion", codecs.DeploymentStatusManifest, status, "/adoptedManifestVersion"],
  ];

  for (const [name, codec, body, at] of cases) {
    it(`${name}: 2^64-1 survives decode -> encode -> decode byte-exactly`, () => {
      const first = codec.decode(body(MAX));
      expect(first.problems).toEqual([]);
      const bytes = codec.encode(first.value);
      expect(text(bytes)).toContain(`:${MAX}`);
      expect(codec.decode(bytes).value).toEqual(first.value);
      expect(text(codec.encode(codec.decode(bytes).value))).toBe(text(bytes));
    });

    it(`${name}: 2^64 is wire.uint64-range, never clamped`, () => {
      const { value, problems } = codec.decode(body(OVER));
      expect(value).toBeUndefined();
      expect(problems).toEqual([
        expect.objectContaining({ rule: "wire.uint64-range", pointer: at }),
      ]);
    });
  }

  it("0 is rejected for manifestVersion and adoptedManifestVersion (range [1, 2^64-1])", () => {
    expect(decodeStateManifest(manifest("0")).problems).toEqual([
      expect.objectContaining({ rule: "wire.uint64-range", pointer: "/manifestVersion" }),
    ]);
    expect(decodeDeploymentStatus(status("0")).problems).toEqual([
      expect.objectContaining({ rule: "wire.uint64-range", pointer: "/adoptedManifestVersion" }),
    ]);
  });

  it("0 is a valid sizeBytes (unsigned 64-bit, advisory)", () => {
    expect(decodeStateManifest(manifest("1", "0", "0")).problems).toEqual([]);
  });

  it("negative, fractional and imprecise spellings are problems too", () => {
    expect(decodeStateManifest(manifest("-1")).problems[0]?.rule).toBe("wire.uint64-range");
    expect(decodeStateManifest(manifest("1.5")).problems[0]?.rule).toBe("wire.type");
    expect(decodeStateManifest(manifest('"7"')).problems[0]?.rule).toBe("wire.type");
    expect(decodeStateManifest(manifest("1e400")).problems[0]?.rule).toBe("wire.number-range");
    expect(decodeStateManifest(manifest("1.8446744073709551615e19")).value?.manifestVersion).toBe(
      U64_MAX,
    );
  });

  it("encoders refuse out-of-range values with ValidationError instead of writing them", () => {
    for (const manifestVersion of [0n, 1n << 64n]) {
      const m = { ...emptyManifest(), manifestVersion };
      expect(() => encodeStateManifest(m)).toThrow(ValidationError);
      try {
        encodeStateManifest(m);
      } catch (e) {
        expect(hasErrors((e as ValidationError).problems)).toBe(true);
        expect((e as ValidationError).problems[0]?.rule).toBe("wire.uint64-range");
      }
    }
    expect(() => encodeDeploymentStatus({ ...fullStatus(), adoptedManifestVersion: 0n })).toThrow(
      ValidationError,
    );
  });
});
