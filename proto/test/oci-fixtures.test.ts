import { randomBytes } from "node:crypto";
import { listFixtures } from "@margo/fixtures";
import { beforeAll, describe, expect, it } from "vitest";
import { OciClient, publishPackageDir, verifyPublished } from "../src/oci/index.js";
import { REGISTRY, requireRegistry } from "./oci-test-env.js";

/**
 * Every fixture through the real registry: valid apps publish and pull back clean; each OCI-stage
 * broken fixture, published with its publish.yaml overrides, is rejected on pull by exactly its
 * named rule. A run keeps to its own namespace so reruns never see stale tags.
 */
const { valid, invalid } = listFixtures();
const ociBroken = invalid.filter((f) => f.expect.stage === "oci");
const run = `margo-test/fixtures-${randomBytes(4).toString("hex")}`;

const errorRules = (ps: ReadonlyArray<{ rule: string; severity: string }>) => [
  ...new Set(ps.filter((p) => p.severity === "error").map((p) => p.rule)),
];

describe("fixtures published to the registry", () => {
  const client = new OciClient({ registry: REGISTRY });
  beforeAll(requireRegistry);

  it("has valid apps and OCI-stage broken fixtures to publish", () => {
    expect(valid.length).toBeGreaterThanOrEqual(3);
    expect(ociBroken.length).toBeGreaterThanOrEqual(2);
  });

  it.each(valid)("publishes $name and pulls it back clean", async (fixture) => {
    const published = await publishPackageDir(client, fixture.dir, {
      packageRepo: `${run}/${fixture.name}/package`,
      mapRepository: (path) => `${run}/${fixture.name}/${path}`,
    });
    expect(published.components.length).toBeGreaterThan(0);
    expect(published.pkg.tag).toBe(published.version);
    expect(await verifyPublished(client, published)).toEqual([]);
  });

  it.each(ociBroken)("rejects $name with exactly $expect.rule", async (fixture) => {
    const published = await publishPackageDir(client, fixture.dir, {
      packageRepo: `${run}/${fixture.name}/package`,
      mapRepository: (path) => `${run}/${fixture.name}/${path}`,
      ...(fixture.publish ? { overrides: fixture.publish } : {}),
    });
    const problems = await verifyPublished(client, published);
    expect(errorRules(problems)).toEqual([fixture.expect.rule]);
  });
});
