import { describe, expect, it } from "vitest";
import type { ImplementationInfo, RunReport } from "../../conformance/src/core/types.js";
import { childEnv, MUTANT_ENV, mutantMismatches } from "./run.js";

const impl = (...features: string[]): ImplementationInfo => ({
  vendor: "v",
  product: "p",
  version: "1",
  margoVersion: "1.0.0-rc.3",
  features,
});
const report = (implementations: RunReport["implementations"]) => ({ implementations });

describe("childEnv", () => {
  it("drops a stale MARGO_TEST_MUTANT and sets only the requested one", () => {
    const stale = { PATH: "/bin", [MUTANT_ENV]: "no-removal" };
    expect(childEnv(undefined, stale)).toEqual({ PATH: "/bin" });
    expect(childEnv("tls12-default", stale)).toEqual({
      PATH: "/bin",
      [MUTANT_ENV]: "tls12-default",
    });
    // The caller's environment is left as it was.
    expect(stale[MUTANT_ENV]).toBe("no-removal");
  });
});

describe("mutantMismatches", () => {
  it("accepts the reference when no mutant was asked for, and exactly the requested mutant", () => {
    expect(
      mutantMismatches(report({ wfm: impl("bundle"), device: impl("compose", "oci") }), {}),
    ).toEqual([]);
    expect(
      mutantMismatches(report({ wfm: impl("bundle", "mutant:tls12-default"), package: impl() }), {
        wfmMutant: "tls12-default",
      }),
    ).toEqual([]);
  });

  it("names a mutant nobody asked for, a requested one that is missing, and the wrong one", () => {
    const stale = mutantMismatches(report({ device: impl("oci", "mutant:no-removal") }), {});
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatch(/device suite: .*runs mutant no-removal, but this run asked for none/);
    expect(mutantMismatches(report({ wfm: impl("bundle") }), { wfmMutant: "x" })[0]).toMatch(
      /wfm suite: .*runs no mutant, but this run asked for mutant x/,
    );
    expect(
      mutantMismatches(report({ wfm: impl("mutant:y") }), { wfmMutant: "x", agentMutant: "z" }),
    ).toHaveLength(1);
  });

  it("does not judge a side the report does not describe", () => {
    expect(mutantMismatches(report({}), { wfmMutant: "x", agentMutant: "y" })).toEqual([]);
  });
});
