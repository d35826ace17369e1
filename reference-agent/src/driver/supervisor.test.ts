import { afterEach, describe, expect, it, vi } from "vitest";
import type { AgentConfig } from "../config.js";

/**
 * DeviceDriver Info of a supervisor that has not started its agent yet (what the harness sees
 * first), with MARGO_TEST_MUTANT set to `mutant` (or unset). The mutant switch reads the
 * environment once per module instance, hence the fresh import.
 */
async function infoWith(mutant: string | undefined) {
  vi.resetModules();
  vi.stubEnv("MARGO_TEST_MUTANT", mutant ?? "");
  const { AgentSupervisor } = await import("./supervisor.js");
  const s = new AgentSupervisor(
    {} as AgentConfig,
    () => Promise.reject(new Error("not started in this test")),
    () => {},
  );
  return s.info();
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("DeviceDriver Info", () => {
  it("answers the reference's runtimes when no mutant is active", async () => {
    expect((await infoWith(undefined)).supportedRuntimes).toEqual(["oci"]);
  });

  it("adds mutant:<name> (InfoResponse has no features field; the harness reports runtimes as features)", async () => {
    expect((await infoWith("no-removal")).supportedRuntimes).toEqual(["oci", "mutant:no-removal"]);
  });
});
