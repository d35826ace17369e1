import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type ApplicationDescriptionDoc,
  checkParameterValue,
  DESCRIPTION_RULES,
  encodeDescription,
  encodeDescriptionDoc,
  validateDescription,
} from "../src/package/description/index.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const specDir = process.env.MARGO_SPEC_DIR ?? join(repoRoot, "..", "shared", "margo-reference");

/** A small description that breaks no rule; each case below breaks exactly one thing in a copy. */
function base(): ApplicationDescriptionDoc {
  return {
    apiVersion: "v1",
    id: "acme-demo",
    metadata: {
      name: "Acme demo",
      version: "1.0.0",
      catalog: {
        application: { tagline: "demo", tags: ["a"] },
        author: [{ name: "A. Dev", email: "dev@acme.example" }],
        organization: [{ name: "Acme" }],
      },
    },
    deploymentProfiles: [
      {
        type: "compose",
        id: "compose-a",
        deviceConstraints: {
          capacityRequirements: {
            cpu: { cores: 0.5, architectures: ["amd64", "arm64"] },
            memory: "256Mi",
            storage: "1Gi",
          },
          eligibilityRules: [
            {
              propertySelector: {
                matchExpressions: [
                  { key: "/vendor", operator: "In", values: ["acme"] },
                  {
                    key: "/peripherals",
                    operator: "ContainsAny",
                    itemSelector: { matchExpressions: [{ key: "/type", operator: "Exists" }] },
                  },
                ],
              },
            },
          ],
        },
        components: [
          {
            name: "web",
            properties: {
              repository: "oci://127.0.0.1:5000/acme/web",
              revision: "1.0.0",
              wait: true,
              timeout: "5m0s",
            },
            "x-acme-extensions": { tier: "gold" },
          },
        ],
      },
    ],
    parameters: {
      greeting: { value: "hello", targets: [{ pointer: "GREETING", components: ["web"] }] },
      workers: { value: 4, targets: [{ pointer: "WORKERS", components: ["web"] }] },
    },
    configuration: {
      sections: [
        {
          name: "General",
          settings: [
            { parameter: "greeting", name: "Greeting", schema: "text" },
            { parameter: "workers", name: "Workers", schema: "count" },
          ],
        },
      ],
      schema: [
        { name: "text", dataType: "string", maxLength: 20 },
        { name: "count", dataType: "integer", minValue: 1, maxValue: 16 },
      ],
    },
    "x-acme-extensions": { catalogue: { featured: true } },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the cases reach into the document at any depth to break it
type Doc = Record<string, any>;

function must<T>(v: T | undefined): T {
  if (v === undefined) throw new Error("expected a value");
  return v;
}

function rulesOf(text: string): string[] {
  return validateDescription(text)
    .problems.filter((p) => p.severity === "error")
    .map((p) => p.rule);
}

describe("validateDescription", () => {
  it("accepts the base description and maps it to the generated model", () => {
    const r = validateDescription(encodeDescriptionDoc(base()));
    expect(r.problems).toEqual([]);
    expect(r.value?.id).toBe("acme-demo");
    expect(r.value?.deploymentProfiles[0]?.components[0]?.extensions).toEqual({
      "x-acme-extensions": { tier: "gold" },
    });
    expect(r.value?.extensions["x-acme-extensions"]).toEqual({ catalogue: { featured: true } });
    expect(r.value?.parameters.workers?.value).toBe(4);
  });

  it("round-trips through encodeDescription", () => {
    const first = validateDescription(encodeDescriptionDoc(base()));
    expect(first.value).toBeDefined();
    const text = encodeDescription(must(first.value));
    const second = validateDescription(text);
    expect(second.problems).toEqual([]);
    expect(second.doc).toEqual(first.doc);
    expect(second.value).toEqual(first.value);
    // A fixed point: encoding the re-read model gives the same bytes.
    expect(encodeDescription(must(second.value))).toBe(text);
  });

  const cases: Array<[string, (d: Doc) => void, string, string?]> = [
    ["missing apiVersion", (d) => delete d.apiVersion, "description.required", "/apiVersion"],
    [
      "missing metadata.version",
      (d) => delete d.metadata.version,
      "description.required",
      "/metadata/version",
    ],
    ["missing organization", (d) => delete d.metadata.catalog.organization, "description.required"],
    ["id as number", (d) => (d.id = 42), "description.type", "/id"],
    [
      "wait as string",
      (d) => (d.deploymentProfiles[0].components[0].properties.wait = "yes"),
      "description.type",
    ],
    [
      "apiVersion legacy",
      (d) => (d.apiVersion = "margo.org/v1-alpha1"),
      "description.api-version",
      "/apiVersion",
    ],
    ["id uppercase", (d) => (d.id = "Acme_Demo"), "description.id-pattern", "/id"],
    ["id too long", (d) => (d.id = "a".repeat(201)), "description.id-pattern"],
    [
      "component name with period",
      (d) => {
        d.deploymentProfiles[0].components[0].name = "web.app";
        d.parameters.greeting.targets[0].components = ["web.app"];
        d.parameters.workers.targets[0].components = ["web.app"];
      },
      "description.component-name-pattern",
      "/deploymentProfiles/0/components/0/name",
    ],
    [
      "duplicate component",
      (d) =>
        d.deploymentProfiles[0].components.push(
          structuredClone(d.deploymentProfiles[0].components[0]),
        ),
      "description.component-name-unique",
      "/deploymentProfiles/0/components/1/name",
    ],
    [
      "profile type helm.v3",
      (d) => (d.deploymentProfiles[0].type = "helm.v3"),
      "description.profile-type",
    ],
    [
      "duplicate profile id",
      (d) => {
        const p = structuredClone(d.deploymentProfiles[0]);
        d.deploymentProfiles.push(p);
      },
      "description.profile-id-unique",
      "/deploymentProfiles/1/id",
    ],
    [
      "https repository",
      (d) => (d.deploymentProfiles[0].components[0].properties.repository = "https://r.example/x"),
      "description.repository-scheme",
    ],
    [
      "revision with v",
      (d) => (d.deploymentProfiles[0].components[0].properties.revision = "v1.0.0"),
      "description.revision-semver",
    ],
    [
      "revision with +",
      (d) => (d.deploymentProfiles[0].components[0].properties.revision = "1.0.0+build.1"),
      "description.revision-semver",
    ],
    [
      "timeout in seconds",
      (d) => (d.deploymentProfiles[0].components[0].properties.timeout = "300s"),
      "description.timeout-pattern",
    ],
    [
      "memory in MB",
      (d) => (d.deploymentProfiles[0].deviceConstraints.capacityRequirements.memory = "256MB"),
      "description.memory-pattern",
    ],
    [
      "storage with space",
      (d) => (d.deploymentProfiles[0].deviceConstraints.capacityRequirements.storage = "1 Gi"),
      "description.storage-pattern",
    ],
    [
      "architecture x86",
      (d) =>
        (d.deploymentProfiles[0].deviceConstraints.capacityRequirements.cpu.architectures = [
          "x86",
        ]),
      "description.architecture-enum",
      "/deploymentProfiles/0/deviceConstraints/capacityRequirements/cpu/architectures/0",
    ],
    [
      "other without description",
      (d) =>
        (d.deploymentProfiles[0].deviceConstraints.capacityRequirements.cpu.architectures = [
          "other",
        ]),
      "description.other-arch-description",
    ],
    [
      "operator lowercase",
      (d) =>
        (d.deploymentProfiles[0].deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].operator =
          "in"),
      "description.operator-enum",
    ],
    [
      "In without values",
      (d) =>
        delete d.deploymentProfiles[0].deviceConstraints.eligibilityRules[0].propertySelector
          .matchExpressions[0].values,
      "description.match-values-required",
    ],
    [
      "Gt with a string",
      (d) =>
        Object.assign(
          d.deploymentProfiles[0].deviceConstraints.eligibilityRules[0].propertySelector
            .matchExpressions[0],
          { operator: "Gt", values: ["x"] },
        ),
      "description.match-values-type",
    ],
    [
      "ContainsAny without itemSelector",
      (d) =>
        delete d.deploymentProfiles[0].deviceConstraints.eligibilityRules[0].propertySelector
          .matchExpressions[1].itemSelector,
      "description.match-item-selector-required",
    ],
    [
      "property key not a pointer",
      (d) =>
        (d.deploymentProfiles[0].deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].key =
          "vendor"),
      "description.match-key-pointer",
    ],
    [
      "empty eligibility rule",
      (d) => d.deploymentProfiles[0].deviceConstraints.eligibilityRules.push({}),
      "description.eligibility-rule-empty",
    ],
    [
      "custom without label selector",
      (d) => (d.deploymentProfiles[0].type = "custom"),
      "description.custom-label-selector",
      "/deploymentProfiles/0",
    ],
    [
      "bad email",
      (d) => (d.metadata.catalog.author[0].email = "nobody"),
      "description.email-pattern",
    ],
    [
      "extension is a list",
      (d) => (d["x-acme-extensions"] = [1]),
      "description.extension-not-object",
      "/x-acme-extensions",
    ],
    [
      "unknown target component",
      (d) => (d.parameters.greeting.targets[0].components = ["nope"]),
      "description.target-component-unknown",
      "/parameters/greeting/targets/0/components/0",
    ],
    [
      "unknown setting parameter",
      (d) => (d.configuration.sections[0].settings[0].parameter = "nope"),
      "description.setting-parameter-unknown",
    ],
    [
      "unknown setting schema",
      (d) => (d.configuration.sections[0].settings[0].schema = "nope"),
      "description.setting-schema-unknown",
    ],
    [
      "bad dataType",
      (d) => (d.configuration.schema[0].dataType = "float"),
      "description.schema-data-type",
    ],
    [
      "duplicate schema name",
      (d) => d.configuration.schema.push({ name: "text", dataType: "string" }),
      "description.schema-name-unique",
    ],
    [
      "invalid regexMatch",
      (d) => (d.configuration.schema[0].regexMatch = "(["),
      "description.schema-regex",
    ],
    [
      "value of wrong type",
      (d) => (d.parameters.workers.value = "four"),
      "description.parameter-value-type",
      "/parameters/workers/value",
    ],
    [
      "value out of range",
      (d) => (d.parameters.workers.value = 99),
      "description.parameter-value-rule",
      "/parameters/workers/value",
    ],
    ["two documents", () => undefined, "description.multi-document"],
    [
      "multiselect without options",
      (d) => (d.configuration.schema[0].multiselect = false),
      "description.required",
      "/configuration/schema/0/options",
    ],
    [
      "fractional bound on an integer schema",
      (d) => (d.configuration.schema[1].minValue = 0.5),
      "description.type",
      "/configuration/schema/1/minValue",
    ],
  ];

  it.each(cases)("rejects %s", (name, mutate, rule, at) => {
    const d = base() as Doc;
    mutate(d);
    let text = encodeDescriptionDoc(d as ApplicationDescriptionDoc);
    if (name === "two documents") text += "---\nid: again\n";
    const r = validateDescription(text);
    const errors = r.problems.filter((p) => p.severity === "error");
    expect(errors.map((p) => p.rule)).toContain(rule);
    // Each case breaks one thing, so one rule (and only that rule) fires.
    expect(new Set(errors.map((p) => p.rule))).toEqual(new Set([rule]));
    if (at !== undefined) expect(errors.find((p) => p.rule === rule)?.pointer).toBe(at);
    expect(r.value).toBeUndefined();
  });

  it("reports every problem of a badly broken document in one run", () => {
    const d = base() as Doc;
    d.id = "BAD";
    d.apiVersion = "v2";
    d.deploymentProfiles[0].components[0].properties.revision = "latest";
    d.deploymentProfiles[0].components[0].properties.timeout = "5m";
    d.parameters.greeting.targets[0].components = ["ghost"];
    const rules = rulesOf(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
    expect(rules.sort()).toEqual(
      [
        "description.api-version",
        "description.id-pattern",
        "description.revision-semver",
        "description.target-component-unknown",
        "description.timeout-pattern",
      ].sort(),
    );
  });

  it("warns on unknown members but does not reject, and ignores unknown extensions", () => {
    const d = base() as Doc;
    d.kind = "ApplicationDescription";
    d.deploymentProfiles[0]["x-other-vendor-extensions"] = { anything: [1, 2] };
    d.deploymentProfiles[0].components[0].properties.packageLocation = "https://x/y.tgz";
    const r = validateDescription(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
    expect(r.problems.every((p) => p.severity === "warning")).toBe(true);
    expect(r.problems.map((p) => p.pointer).sort()).toEqual([
      "/deploymentProfiles/0/components/0/properties/packageLocation",
      "/kind",
    ]);
    expect(r.problems.every((p) => p.rule === "description.unknown-member")).toBe(true);
    expect(r.value?.deploymentProfiles[0]?.extensions["x-other-vendor-extensions"]).toEqual({
      anything: [1, 2],
    });
  });

  it("warns about schema fields of another subtype", () => {
    const d = base() as Doc;
    d.configuration.schema[1].maxLength = 3;
    const r = validateDescription(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
    expect(r.problems.map((p) => [p.rule, p.severity, p.pointer])).toEqual([
      ["description.schema-field-mismatch", "warning", "/configuration/schema/1/maxLength"],
    ]);
    expect(r.value).toBeDefined();
  });

  it("points problems at their line in the file", () => {
    const text = encodeDescriptionDoc(base()).replace("revision: 1.0.0", "revision: one");
    const line = text.split("\n").findIndex((l) => l.includes("revision: one")) + 1;
    const p = validateDescription(text).problems.find(
      (x) => x.rule === "description.revision-semver",
    );
    expect(p?.message).toContain(`(line ${line})`);
  });

  it("never throws on hostile or odd input", () => {
    const inputs = [
      "",
      "---",
      "[]",
      "42",
      "\t\tfoo: : :",
      "a: &a [*a]",
      `a: &x [1,1,1,1,1,1,1,1,1,1]\n${Array.from({ length: 12 }, (_, i) => `b${i}: &y${i} [${"*x,".repeat(10)}]`).join("\n")}\nc: [${Array.from({ length: 12 }, (_, i) => `*y${i},`.repeat(20)).join("")}]`,
      "id: 1\nid: 2\n",
      "deploymentProfiles: 3\nparameters: [1]\nconfiguration: {sections: {}, schema: [{}]}",
      "deploymentProfiles: [{components: [{properties: 1}], deviceConstraints: {eligibilityRules: [{propertySelector: {matchExpressions: [{operator: In, values: {}}]}}]}}]",
      "configuration: {sections: [{settings: [{parameter: p, schema: s}]}], schema: [{name: s, dataType: string, options: {a: 1}}]}\nparameters: {p: {value: x, targets: []}}",
    ];
    for (const text of inputs) {
      const r = validateDescription(text);
      expect(r.problems.length, text).toBeGreaterThan(0);
      expect(r.value).toBeUndefined();
    }
    expect(rulesOf("id: 1\nid: 2\n")).toEqual(["description.yaml-syntax"]);
  });

  it("survives any member replaced by a value of any other type", () => {
    const replacements: unknown[] = [null, 7, 1.5, "x", true, [], [{}], {}, { a: [1] }];
    const paths: Array<Array<string | number>> = [];
    const walk = (v: unknown, path: Array<string | number>) => {
      if (path.length > 0) paths.push(path);
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, [...path, i]);
      } else if (v && typeof v === "object")
        for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(base(), []);
    expect(paths.length).toBeGreaterThan(80);
    let rejected = 0;
    for (const path of paths) {
      for (const replacement of replacements) {
        const d = base() as Doc;
        let parent: Doc = d;
        for (const seg of path.slice(0, -1)) parent = parent[seg];
        parent[path[path.length - 1] as string] = structuredClone(replacement);
        const r = validateDescription(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
        const bad = r.problems.some((p) => p.severity === "error");
        // Either the value is rejected or the model was built; never both, never neither.
        expect(bad, JSON.stringify(path)).toBe(r.value === undefined);
        if (bad) rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(paths.length * 5);
  });

  it("has a rule text for every rule id the validator emits in these tests", () => {
    const ids = new Set(DESCRIPTION_RULES.map((r) => r.id));
    for (const [, , rule] of cases) expect(ids.has(rule), rule).toBe(true);
    expect(ids.has("description.unknown-member")).toBe(true);
    expect(ids.size).toBe(DESCRIPTION_RULES.length);
  });
});

describe("version tag and empty lists", () => {
  it.each([
    ["1.0.0+build.1", []],
    ["1.0.0-rc.1", []],
    ["1.0.0 beta", ["description.version-tag"]],
    [".1.0", ["description.version-tag"]],
    [`1.${"0".repeat(130)}`, ["description.version-tag"]],
  ])("version %s", (version, rules) => {
    const d = base();
    d.metadata.version = version;
    expect(rulesOf(encodeDescriptionDoc(d))).toEqual(rules);
  });

  it("warns on empty deploymentProfiles and components", () => {
    const d = base() as Doc;
    d.deploymentProfiles[0].components = [];
    d.parameters = {};
    const r = validateDescription(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
    expect(r.problems.map((p) => [p.rule, p.pointer, p.severity])).toContainEqual([
      "description.empty-list",
      "/deploymentProfiles/0/components",
      "warning",
    ]);
    d.deploymentProfiles = [];
    const r2 = validateDescription(encodeDescriptionDoc(d as ApplicationDescriptionDoc));
    expect(r2.problems.map((p) => [p.rule, p.pointer, p.severity])).toContainEqual([
      "description.empty-list",
      "/deploymentProfiles",
      "warning",
    ]);
  });
});

describe("integers beyond 2^53", () => {
  function withWorkers(value: string, maxValue?: number): string {
    const d = base() as Doc;
    if (maxValue === undefined) delete d.configuration.schema[1].maxValue;
    else d.configuration.schema[1].maxValue = maxValue;
    return encodeDescriptionDoc(d as ApplicationDescriptionDoc).replace(
      "value: 4\n",
      `value: ${value}\n`,
    );
  }

  it("keeps them exact in doc and warns that the model rounds them", () => {
    const r = validateDescription(withWorkers("9007199254740993"));
    expect(r.problems.map((p) => [p.rule, p.pointer, p.severity])).toEqual([
      ["description.integer-precision", "/parameters/workers/value", "warning"],
    ]);
    expect(r.doc?.parameters?.workers?.value).toBe(9007199254740993n);
    expect(r.value?.parameters.workers?.value).toBe(9007199254740992);
    expect(encodeDescriptionDoc(must(r.doc))).toContain("value: 9007199254740993\n");
  });

  it("compares them exactly against schema bounds", () => {
    const r = validateDescription(withWorkers("9007199254740993", 9007199254740992));
    expect(r.problems.filter((p) => p.severity === "error").map((p) => p.rule)).toEqual([
      "description.parameter-value-rule",
    ]);
    expect(validateDescription(withWorkers("9007199254740991")).problems).toEqual([]);
  });
});

describe("checkParameterValue", () => {
  it("accepts whole numbers for double and checks precision and options", () => {
    expect(checkParameterValue(1, { name: "d", dataType: "double", maxPrecision: 1 })).toEqual([]);
    expect(
      checkParameterValue(1.25, { name: "d", dataType: "double", maxPrecision: 1 })[0]?.rule,
    ).toBe("description.parameter-value-rule");
    expect(checkParameterValue(1.5, { name: "i", dataType: "integer" })[0]?.rule).toBe(
      "description.parameter-value-type",
    );
    expect(
      checkParameterValue(["a", "b"], {
        name: "s",
        dataType: "string",
        multiselect: true,
        options: ["a", "b"],
      }),
    ).toEqual([]);
    expect(
      checkParameterValue("c", { name: "s", dataType: "string", options: ["a", "b"] }),
    ).toHaveLength(1);
    expect(
      checkParameterValue("abc", { name: "t", dataType: "string", regexMatch: "^a+$" }),
    ).toHaveLength(1);
    expect(checkParameterValue([true], { name: "b", dataType: "array[boolean]" })).toEqual([]);
  });
});

describe("upstream example ApplicationDescription-002.yaml", () => {
  const file = join(specDir, "examples", "ApplicationDescription-002.yaml");

  it("is invalid YAML as published (over-indented values: on line 59)", () => {
    expect(existsSync(file), `spec material missing at ${file}; set MARGO_SPEC_DIR`).toBe(true);
    const r = validateDescription(readFileSync(file, "utf8"));
    expect(r.problems.map((p) => p.rule)).toEqual(["description.yaml-syntax"]);
    expect(r.problems[0]?.message).toMatch(/line 5[89]/);
  });

  it("validates with no errors once that one line's indentation is fixed in memory", () => {
    const lines = readFileSync(file, "utf8").split("\n");
    expect(lines[58]).toMatch(/^ {24}values: \["NVIDIA"\]/);
    lines[58] = must(lines[58]).replace(/^ {24}/, " ".repeat(22));
    const r = validateDescription(lines.join("\n"));
    expect(r.problems).toEqual([]);
    expect(r.value?.id).toBe("com-northstartida-digitron-orchestrator");
    expect(r.value?.deploymentProfiles.map((p) => p.type)).toEqual(["helm", "compose"]);
    expect(Object.keys(r.value?.parameters ?? {})).toHaveLength(10);
    // Re-encoding and re-reading keeps the content.
    const again = validateDescription(encodeDescription(must(r.value)));
    expect(again.problems).toEqual([]);
    expect(again.value).toEqual(r.value);
  });
});
