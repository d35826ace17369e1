import { describe, expect, it } from "vitest";
import { hasErrors, type Problem, ValidationError } from "../src/problem.js";
import {
  bundleUrl,
  type Decoded,
  decodeApplicationDeployment,
  decodeDeploymentStatus,
  decodeDeviceCapabilities,
  decodeDiscoveryDocument,
  decodeProblemDetail,
  decodeSpiffeBundle,
  decodeStateManifest,
  deploymentUrl,
  encodeApplicationDeployment,
  encodeDeploymentStatus,
  encodeDeviceCapabilities,
  encodeDiscoveryDocument,
  encodeProblemDetail,
  encodeSpiffeBundle,
  encodeStateManifest,
  parseJson,
  parseYaml,
  WIRE_RULE_IDS,
  WIRE_RULES,
} from "../src/wire/index.js";
import {
  discoveryDocument,
  fullCapabilities,
  fullDeployment,
  fullManifest,
  fullProblem,
  fullStatus,
  spiffeBundle,
} from "./wire-samples.js";

const rulesAt = (problems: readonly Problem[]) =>
  problems.map((p) => `${p.rule} ${p.pointer}`).sort();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("invalid bodies give every problem, each with a pointer and a named rule", () => {
  it("a status body with 3 independent errors gives exactly 3 problems", () => {
    const body = JSON.stringify({
      deploymentId: 42,
      adoptedManifestVersion: 1,
      status: { state: "Installed" },
      components: [{ name: "db" }],
    });
    const { value, problems } = decodeDeploymentStatus(body);
    expect(value).toBeUndefined();
    expect(rulesAt(problems)).toEqual([
      "wire.enum /status/state",
      "wire.required /components/0/state",
      "wire.type /deploymentId",
    ]);
  });

  it("status: missing members, bad deviceId, legacy envelope, tolerated unknown member", () => {
    const { problems } = decodeDeploymentStatus(
      JSON.stringify({
        apiVersion: "v1",
        kind: "DeploymentStatusManifest",
        deviceId: "gw/child/",
        extra: 1,
      }),
    );
    expect(rulesAt(problems)).toEqual([
      "wire.ignored-member /extra",
      "wire.legacy-member /apiVersion",
      "wire.legacy-member /kind",
      "wire.pattern /deviceId",
      "wire.required /adoptedManifestVersion",
      "wire.required /components",
      "wire.required /deploymentId",
      "wire.required /status",
    ]);
    expect(problems.find((p) => p.rule === "wire.ignored-member")?.severity).toBe("warning");
  });

  it("state manifest: the three null-bundle cases, media type, digest and deployment errors", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const ref = { deploymentId: "d", digest, url: `/api/v1/deployments/d/${digest}` };
    const bundle = {
      mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
      digest,
      url: `/api/v1/bundles/${digest}`,
    };
    expect(rulesAt(decodeStateManifest('{"manifestVersion":1,"deployments":[]}').problems)).toEqual(
      ["wire.null-bundle /bundle"],
    );
    expect(
      rulesAt(
        decodeStateManifest(
          JSON.stringify({ manifestVersion: 1, bundle: null, deployments: [ref] }),
        ).problems,
      ),
    ).toEqual(["wire.null-bundle /bundle"]);
    expect(
      rulesAt(
        decodeStateManifest(JSON.stringify({ manifestVersion: 1, bundle, deployments: [] }))
          .problems,
      ),
    ).toEqual(["wire.null-bundle /bundle"]);
    const bad = {
      manifestVersion: 2,
      bundle: {
        mediaType: "Application/vnd.margo.bundle.v1+tar+gzip",
        digest: "sha256:ABC",
        sizeBytes: -1,
      },
      deployments: [{ deploymentId: "d", digest: `sha512:${"a".repeat(128)}` }, "nope"],
    };
    expect(rulesAt(decodeStateManifest(JSON.stringify(bad)).problems)).toEqual([
      "wire.digest /bundle/digest",
      "wire.digest /deployments/0/digest",
      "wire.media-type /bundle/mediaType",
      "wire.required /bundle/url",
      "wire.required /deployments/0/url",
      "wire.type /deployments/1",
      "wire.uint64-range /bundle/sizeBytes",
    ]);
  });

  it("state manifest: urls must be the OpenAPI's /api/v1 forms for their own digest and id", () => {
    const a = `sha256:${"a".repeat(64)}`;
    const b = `sha256:${"b".repeat(64)}`;
    const body = (bundleUrlText: string, refs: Array<[string, string, string]>) =>
      JSON.stringify({
        manifestVersion: 3,
        bundle: {
          mediaType: "application/vnd.margo.bundle.v1+tar+gzip",
          digest: a,
          url: bundleUrlText,
        },
        deployments: refs.map(([deploymentId, digest, url]) => ({ deploymentId, digest, url })),
      });
    const good: Array<[string, string, string]> = [["d", b, `/api/v1/deployments/d/${b}`]];
    expect(decodeStateManifest(body(`/api/v1/bundles/${a}`, good)).problems).toEqual([]);
    // Another digest, another host, a path prefix (digest open question 20: the OpenAPI form has
    // nothing before /api/v1), a query: each is one wire.url-form at /bundle/url.
    for (const url of [
      `/api/v1/bundles/${b}`,
      `https://evil.example/api/v1/bundles/${a}`,
      `/v1alpha2/margo/api/v1/bundles/${a}`,
      `/api/v1/bundles/${a}?x=1`,
      `/api/v1/bundles/${a.toUpperCase()}`,
    ]) {
      const decoded = decodeStateManifest(body(url, good));
      expect(decoded.value, url).toBeUndefined();
      expect(rulesAt(decoded.problems), url).toEqual(["wire.url-form /bundle/url"]);
    }
    const refs: Array<[string, string, string]> = [
      ["d", b, `/api/v1/deployments/d/${a}`], // digest of another document
      ["e", b, `/api/v1/deployments/d/${b}`], // id of another deployment
      ["f", b, `https://wfm.example/api/v1/deployments/f/${b}`],
      ["g", b, `/api/v1/deployments/g/x/${b}`],
      ["h/1", b, `/api/v1/deployments/h%2F1/${b}`], // percent-encoded id: valid
      ["d", a, `/api/v1/deployments/d/${a}`], // same id as /deployments/0
    ];
    expect(rulesAt(decodeStateManifest(body(`/api/v1/bundles/${a}`, refs)).problems)).toEqual([
      "wire.duplicate-deployment /deployments/5/deploymentId",
      "wire.url-form /deployments/0/url",
      "wire.url-form /deployments/1/url",
      "wire.url-form /deployments/2/url",
      "wire.url-form /deployments/3/url",
    ]);
    expect(deploymentUrl("h/1", b)).toBe(`/api/v1/deployments/h%2F1/${b}`);
    expect(bundleUrl(a)).toBe(`/api/v1/bundles/${a}`);
  });

  it("state manifest encoder refuses urls of another form and duplicate deploymentIds", () => {
    const wrongBundle = fullManifest();
    if (wrongBundle.bundle) wrongBundle.bundle.url = "https://cdn.example/bundle.tgz";
    const wrongRef = fullManifest();
    const second = wrongRef.deployments[1];
    if (second) second.url = `/api/v1/deployments/other/${second.digest}`;
    const duplicate = fullManifest();
    const first = duplicate.deployments[0];
    if (first) duplicate.deployments.push({ ...first });
    for (const [value, expected] of [
      [wrongBundle, "wire.url-form /bundle/url"],
      [wrongRef, "wire.url-form /deployments/1/url"],
      [
        duplicate,
        `wire.duplicate-deployment /deployments/${duplicate.deployments.length - 1}/deploymentId`,
      ],
    ] as const) {
      let thrown: unknown;
      try {
        encodeStateManifest(value);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect(rulesAt((thrown as ValidationError).problems)).toEqual([expected]);
    }
  });

  it("capabilities: closed root, extension shape, labels, enums, minItems, required identity", () => {
    const body = {
      apiVersion: "device.margo.org/v1alpha1",
      properties: {
        id: "bad id",
        vendor: "v",
        serialNumber: 7,
        cpus: [{ cores: "4", architecture: "riscv64" }],
        peripherals: [{ type: "printer" }],
        interfaces: [{}],
        supportedRuntimes: [],
        supportedDeploymentTypes: ["compose", "podman"],
        roles: ["Standalone Device"],
      },
      labels: { ok: "x", empty: [], mixed: [1, "a"], obj: { a: 1 } },
      "x-acme-extensions": "not an object",
      "x-Bad-extensions": {},
      unexpected: true,
    };
    const { value, problems } = decodeDeviceCapabilities(JSON.stringify(body));
    expect(value).toBeUndefined();
    expect(rulesAt(problems)).toEqual([
      "wire.enum /properties/cpus/0/architecture",
      "wire.enum /properties/peripherals/0/type",
      "wire.enum /properties/supportedDeploymentTypes/1",
      "wire.extension-not-object /x-acme-extensions",
      "wire.label-empty-array /labels/empty",
      "wire.label-value /labels/mixed",
      "wire.label-value /labels/obj",
      "wire.legacy-member /apiVersion",
      "wire.legacy-member /properties/roles",
      "wire.min-items /properties/supportedRuntimes",
      "wire.pattern /properties/id",
      "wire.required /properties/interfaces/0/type",
      "wire.required /properties/modelNumber",
      "wire.type /properties/cpus/0/cores",
      "wire.type /properties/serialNumber",
      "wire.unknown-member /unexpected",
      "wire.unknown-member /x-Bad-extensions",
    ]);
    // Unknown deployment types map to custom with a warning (checklist 34), not an error.
    expect(
      problems.find((p) => p.pointer === "/properties/supportedDeploymentTypes/1")?.severity,
    ).toBe("warning");
  });

  it("capabilities: an empty label array is accepted (decided; see labelValueProblem) with a warning", () => {
    // The labels description allows "an array of strings or numbers", which [] is; only the
    // schema's oneOf refuses it (it matches both array branches). We accept it and warn.
    const caps = fullCapabilities();
    caps.labels = { e: [], s: ["a"], n: [1, 2.5] };
    const bytes = encodeDeviceCapabilities(caps);
    expect(text(bytes)).toContain('"e":[]');
    const { value, problems } = decodeDeviceCapabilities(bytes);
    expect(value?.labels).toEqual({ e: [], s: ["a"], n: [1, 2.5] });
    expect(problems).toEqual([
      expect.objectContaining({
        rule: "wire.label-empty-array",
        pointer: "/labels/e",
        severity: "warning",
      }),
    ]);
  });

  it("problem detail: required members, formats, integer status, enum; extension members kept", () => {
    const { problems } = decodeProblemDetail(
      JSON.stringify({
        type: "not a uri",
        status: 4.5,
        instance: "has space",
        backoffStrategy: "linear",
        errors: [1],
      }),
    );
    expect(rulesAt(problems)).toEqual([
      "wire.enum /backoffStrategy",
      "wire.format /instance",
      "wire.format /type",
      "wire.required /title",
      "wire.type /errors/0",
      "wire.type /status",
    ]);
    const ok = decodeProblemDetail(
      '{"type":"about:blank","title":"Not Found","status":404,"vendor_code":"E1"}',
    );
    expect(ok.problems).toEqual([]);
    expect(ok.value?.extensionMembers).toEqual({ vendor_code: "E1" });
  });

  it("ApplicationDeployment: YAML values with no JSON form are refused at their pointer", () => {
    // Before: a !!binary parameter decoded as {"0":104,...} and a timestamp label as {}.
    const yaml = text(encodeApplicationDeployment(fullDeployment()))
      .replace('value: "120"', "value: !!binary aGVsbG8=")
      .replace("team: ops", "team: !!timestamp 2001-12-14");
    const { value, problems } = decodeApplicationDeployment(yaml);
    expect(value).toBeUndefined();
    expect(rulesAt(problems)).toEqual([
      "wire.yaml-type /metadata/labels/team",
      "wire.yaml-type /spec/parameters/pollFrequency/value",
    ]);
  });

  it("ApplicationDeployment: closed spec/profile/component, patterns, enum, extension shape", () => {
    const yaml = [
      "id: x",
      "metadata:",
      "  name: n",
      "  deviceId: gw/*/child",
      "  labels: {a: 1}",
      "spec:",
      "  applicationId: Bad_Id",
      "  unknownSpecMember: 1",
      "  deploymentProfile:",
      "    type: custom",
      "    x-acme-extensions: [1]",
      "    components:",
      "      - name: c",
      "        extra: 1",
      "        properties:",
      "          repository: https://example.com/c",
      "          revision: v1.0.0",
      "          timeout: 5m",
      "    deviceConstraints:",
      "      capacityRequirements: {memory: 1GB, cpu: {architectures: [sparc]}}",
      "      eligibilityRules:",
      "        - labelSelector: {matchExpressions: [{key: k, operator: in}]}",
      "  parameters:",
      "    p: {targets: [{pointer: P}]}",
      "",
    ].join("\n");
    const { value, problems } = decodeApplicationDeployment(yaml);
    expect(value).toBeUndefined();
    const profile = "/spec/deploymentProfile";
    expect(rulesAt(problems)).toEqual(
      [
        `wire.enum ${profile}/deviceConstraints/capacityRequirements/cpu/architectures/0`,
        `wire.enum ${profile}/deviceConstraints/eligibilityRules/0/labelSelector/matchExpressions/0/operator`,
        `wire.enum ${profile}/type`,
        `wire.extension-not-object ${profile}/x-acme-extensions`,
        `wire.pattern ${profile}/components/0/properties/repository`,
        `wire.pattern ${profile}/components/0/properties/revision`,
        `wire.pattern ${profile}/components/0/properties/timeout`,
        `wire.pattern ${profile}/deviceConstraints/capacityRequirements/memory`,
        "wire.pattern /metadata/deviceId",
        "wire.pattern /spec/applicationId",
        `wire.required ${profile}/deviceConstraints/capacityRequirements/cpu/cores`,
        "wire.required /metadata/namespace",
        "wire.required /spec/parameters/p/targets/0/components",
        "wire.required /spec/parameters/p/value",
        "wire.type /metadata/labels/a",
        `wire.unknown-member ${profile}/components/0/extra`,
        "wire.unknown-member /spec/unknownSpecMember",
      ].sort(),
    );
  });

  it("trust documents: https-only bundle URI, anchors required, unknown members tolerated", () => {
    expect(
      rulesAt(
        decodeDiscoveryDocument('{"trustDomain":"td","trustBundleUri":"http://mis/b.json","v":2}')
          .problems,
      ),
    ).toEqual(["wire.https /trustBundleUri", "wire.ignored-member /v"]);
    expect(rulesAt(decodeDiscoveryDocument('{"trustBundleUri":"not a uri"}').problems)).toEqual([
      "wire.format /trustBundleUri",
      "wire.required /trustDomain",
    ]);
    expect(
      rulesAt(decodeSpiffeBundle('{"keys":[{"kty":"EC","use":"jwt-svid"}]}').problems),
    ).toEqual(["wire.no-x509-anchor /keys"]);
    expect(
      rulesAt(decodeSpiffeBundle('{"spiffe_sequence":-1,"keys":[{"use":"x509-svid"}]}').problems),
    ).toEqual(["wire.required /keys/0/kty", "wire.uint64-range /spiffe_sequence"]);
  });

  it("non-documents are one wire.syntax problem at the root", () => {
    for (const input of [
      "",
      "not json",
      "{]",
      "[1,2",
      '{"a":1,"a":2}',
      new Uint8Array([0xc3, 0x28]),
    ]) {
      const { value, problems } = decodeStateManifest(input);
      expect(value).toBeUndefined();
      expect(problems).toEqual([expect.objectContaining({ rule: "wire.syntax", pointer: "" })]);
    }
    expect(decodeApplicationDeployment("a: [\n").problems[0]?.rule).toBe("wire.syntax");
    expect(decodeApplicationDeployment("a: 1\n---\nb: 2\n").problems[0]?.rule).toBe("wire.syntax");
    expect(decodeStateManifest("[]").problems).toEqual([
      expect.objectContaining({ rule: "wire.type", pointer: "" }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property-style robustness: mutated and random inputs never throw, and what comes back always
// obeys the contract (problems with known rule ids and pointers; a value only without errors).

/** mulberry32 is a tiny seeded PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ATOMS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  "",
  "x",
  "installed",
  "x-a-extensions",
  "18446744073709551616",
  [],
  {},
  [null],
  { a: [] },
];

function randomValue(rand: () => number, depth = 0): unknown {
  const pick = rand();
  if (depth > 3 || pick < 0.6) return ATOMS[Math.floor(rand() * ATOMS.length)];
  if (pick < 0.8)
    return Array.from({ length: Math.floor(rand() * 3) }, () => randomValue(rand, depth + 1));
  const out: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rand() * 3); i++)
    out[["a", "state", "x-b-extensions", "bundle"][i] ?? "k"] = randomValue(rand, depth + 1);
  return out;
}

/** mutateTree replaces, deletes or adds one member somewhere in a parsed document. */
function mutateTree(tree: unknown, rand: () => number): unknown {
  const copy = JSON.parse(JSON.stringify(tree, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (v: unknown) => {
    if (typeof v === "object" && v !== null) {
      containers.push(v as Record<string, unknown>);
      for (const x of Object.values(v)) walk(x);
    }
  };
  walk(copy);
  const target = containers[Math.floor(rand() * containers.length)];
  if (!target) return randomValue(rand);
  const keys = Object.keys(target);
  const key = keys[Math.floor(rand() * keys.length)];
  const action = rand();
  if (key !== undefined && action < 0.5)
    (target as Record<string, unknown>)[key] = randomValue(rand);
  else if (key !== undefined && action < 0.75 && !Array.isArray(target)) delete target[key];
  else if (!Array.isArray(target)) target[`m${Math.floor(rand() * 3)}`] = randomValue(rand);
  else target.push(randomValue(rand));
  return copy;
}

/** mutateText flips, deletes, duplicates or truncates characters of an encoded body. */
function mutateText(s: string, rand: () => number): string {
  const i = Math.floor(rand() * (s.length + 1));
  const r = rand();
  if (r < 0.25) return s.slice(0, i) + s.slice(i + 1);
  if (r < 0.5)
    return (
      s.slice(0, i) + "{}[]\",:-#&*!|>'\n 0x\u0000\ud800"[Math.floor(rand() * 23)] + s.slice(i)
    );
  if (r < 0.75) return s.slice(0, i) + s.slice(Math.max(0, i - 10), i) + s.slice(i);
  return s.slice(0, i);
}

function expectContract(result: Decoded<unknown>): void {
  expect(Array.isArray(result.problems)).toBe(true);
  for (const p of result.problems) {
    expect(WIRE_RULE_IDS.has(p.rule), `unlisted rule ${p.rule}`).toBe(true);
    expect(p.pointer === "" || p.pointer.startsWith("/")).toBe(true);
    expect(p.rule).not.toBe("wire.internal");
  }
  if (result.value !== undefined) expect(hasErrors(result.problems)).toBe(false);
  else expect(hasErrors(result.problems)).toBe(true);
}

describe("random and mutated inputs never throw", () => {
  const subjects: Array<[string, (s: string | Uint8Array) => Decoded<unknown>, string]> = [
    ["state manifest", decodeStateManifest, text(encodeStateManifest(fullManifest()))],
    ["deployment status", decodeDeploymentStatus, text(encodeDeploymentStatus(fullStatus()))],
    [
      "device capabilities",
      decodeDeviceCapabilities,
      text(encodeDeviceCapabilities(fullCapabilities())),
    ],
    ["problem detail", decodeProblemDetail, text(encodeProblemDetail(fullProblem()))],
    [
      "ApplicationDeployment",
      decodeApplicationDeployment,
      text(encodeApplicationDeployment(fullDeployment())),
    ],
    [
      "discovery document",
      decodeDiscoveryDocument,
      text(encodeDiscoveryDocument(discoveryDocument())),
    ],
    ["SPIFFE bundle", decodeSpiffeBundle, text(encodeSpiffeBundle(spiffeBundle()))],
  ];

  for (const [name, decode, valid] of subjects) {
    it(`${name}: 400 text mutations and 400 structural mutations`, () => {
      const rand = prng(name.length * 7919);
      expectContract(decode(valid));
      expect(decode(valid).value).toBeDefined();
      let rejected = 0;
      for (let i = 0; i < 400; i++) {
        let s = valid;
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) s = mutateText(s, rand);
        const result = decode(s);
        expectContract(result);
        if (result.value === undefined) rejected++;
      }
      // JSON is YAML, so a mutated tree serialised as JSON feeds the YAML decoder too.
      const tree =
        name === "ApplicationDeployment" ? parseYaml(valid).value : parseJson(valid).value;
      expect(tree).toBeDefined();
      for (let i = 0; i < 400; i++) {
        const mutated = JSON.stringify(mutateTree(tree, rand));
        const result = decode(mutated);
        expectContract(result);
      }
      // The loop must actually exercise the error paths.
      expect(rejected).toBeGreaterThan(50);
    });
  }

  it("arbitrary bytes and JSON values never throw any decoder", () => {
    const rand = prng(42);
    const decoders = subjects.map(([, d]) => d);
    for (let i = 0; i < 300; i++) {
      const bytes = new Uint8Array(Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
      const json = JSON.stringify(randomValue(rand));
      for (const decode of decoders) {
        expectContract(decode(bytes));
        expectContract(decode(json));
      }
    }
    for (const decode of decoders) {
      expectContract(decode("[".repeat(200_000)));
      expectContract(decode(`${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}`));
      expectContract(decode(`${"- ".repeat(50_000)}x`));
      expectContract(decode("9".repeat(100_000)));
    }
  });
});

describe("WIRE_RULES", () => {
  it("lists unique ids, each with a description and a source", () => {
    const ids = WIRE_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of WIRE_RULES) {
      expect(r.id).toMatch(/^wire\.[a-z0-9-]+$/);
      expect(r.description.length).toBeGreaterThan(10);
      expect(r.source.length).toBeGreaterThan(3);
    }
    for (const id of [
      "wire.syntax",
      "wire.type",
      "wire.required",
      "wire.enum",
      "wire.pattern",
      "wire.unknown-member",
      "wire.uint64-range",
      "wire.null-bundle",
      "wire.extension-not-object",
      "wire.min-items",
    ]) {
      expect(ids).toContain(id);
    }
  });
});
