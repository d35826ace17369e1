import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type CoreHarness,
  capabilitiesBody,
  catalogApp,
  fixtureDescription,
  openCore,
  statusBody,
} from "./support/core.js";

/**
 * Counts the real parsers under the core (not fakes: the wrapped functions do the work), so the
 * test sees how often a body or a stored YAML is actually parsed.
 */
const counts = vi.hoisted(() => ({ jsonParses: 0, yamlDecodes: 0 }));

vi.mock("lossless-json", async (importOriginal) => {
  const original = await importOriginal<typeof import("lossless-json")>();
  return {
    ...original,
    parse: (...args: Parameters<typeof original.parse>) => {
      counts.jsonParses++;
      return original.parse(...args);
    },
  };
});

vi.mock("@margo/proto/wire", async (importOriginal) => {
  const original = await importOriginal<typeof import("@margo/proto/wire")>();
  return {
    ...original,
    decodeApplicationDeployment: (
      ...args: Parameters<typeof original.decodeApplicationDeployment>
    ) => {
      counts.yamlDecodes++;
      return original.decodeApplicationDeployment(...args);
    },
  };
});

const APP = "compose-multi";
let h: CoreHarness;

beforeEach(async () => {
  h = await openCore();
  await catalogApp(h, await fixtureDescription(APP), "2.1.0", APP);
  await h.core.addClient("alpha");
});
afterEach(async () => {
  await h.cleanup();
});

describe("core intake parses each body once", () => {
  it("item 26: a capabilities PUT parses its JSON body exactly once", async () => {
    counts.jsonParses = 0;
    await h.core.putCapabilities("alpha", "dev1", capabilitiesBody("dev1"));
    expect(counts.jsonParses).toBe(1);
  });

  it("item 71: status POSTs parse the body once each and decode the deployment YAML once per revision", async () => {
    const d = await h.core.createDeployment({
      applicationId: APP,
      clientId: "alpha",
      deviceId: "dev1",
    });
    const components = ["store", "api", "web"];
    counts.jsonParses = 0;
    counts.yamlDecodes = 0;
    for (const state of ["pending", "installing", "installed"])
      await h.core.reportStatus(
        "alpha",
        d.deploymentId,
        statusBody(d.deploymentId, 2, state, components),
      );
    expect(counts.jsonParses).toBe(3);
    expect(counts.yamlDecodes).toBe(1);
    // A bad component list is still judged against the cached names.
    await expect(
      h.core.reportStatus(
        "alpha",
        d.deploymentId,
        statusBody(d.deploymentId, 2, "installed", ["store"]),
      ),
    ).rejects.toMatchObject({ kind: "semantic-error" });
    expect(counts.yamlDecodes).toBe(1);
  });
});
