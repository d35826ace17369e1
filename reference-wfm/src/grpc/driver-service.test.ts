import type { ServerUnaryCall } from "@grpc/grpc-js";
import type { wfmDriver } from "@margo/proto";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Northbound } from "../core/api.js";
import type { CallerVerifier } from "./peer.js";

const INFO = {
  vendor: "v",
  product: "p",
  version: "1",
  margoVersion: "1.0.0-rc.3",
  features: ["bundle"],
};

/**
 * WfmDriver Info as the harness sees it, with MARGO_TEST_MUTANT set to `mutant` (or unset). The
 * mutant switch reads the environment once per module instance, hence the fresh import.
 */
async function infoWith(mutant: string | undefined): Promise<wfmDriver.InfoResponse> {
  vi.resetModules();
  if (mutant === undefined) vi.stubEnv("MARGO_TEST_MUTANT", "");
  else vi.stubEnv("MARGO_TEST_MUTANT", mutant);
  const { driverImplementation } = await import("./driver-service.js");
  const callers = { operator: () => ({}) } as unknown as CallerVerifier;
  const impl = driverImplementation({} as Northbound, INFO, callers, () => {});
  return new Promise((resolve, reject) => {
    impl.info(
      { request: {} } as ServerUnaryCall<wfmDriver.InfoRequest, wfmDriver.InfoResponse>,
      (err, res) => (err || !res ? reject(err ?? new Error("no response")) : resolve(res)),
    );
  });
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("WfmDriver Info", () => {
  it("answers the reference's features when no mutant is active", async () => {
    expect((await infoWith(undefined)).features).toEqual(["bundle"]);
  });

  it("adds mutant:<name> when a mutant is active, so the conformance report shows it", async () => {
    expect((await infoWith("status-update-201")).features).toEqual([
      "bundle",
      "mutant:status-update-201",
    ]);
  });
});
