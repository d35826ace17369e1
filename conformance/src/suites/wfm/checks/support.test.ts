import { decodeDeviceCapabilities } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import type { CheckTools } from "../../../core/types.js";
import type { WireResponse } from "../context.js";
import { artifactChecks } from "./artifacts.js";
import { capabilityChecks } from "./capabilities.js";
import { deploymentChecks } from "./deployment-content.js";
import { manifestChecks } from "./manifest.js";
import { statusChecks } from "./status.js";
import {
  capabilitiesBody,
  digestOf,
  header,
  isMargoType,
  PROBLEM_NS,
  problemType,
  readManifest,
  uniqueDeviceId,
  wfmCheck,
} from "./support.js";

function response(body: string, headers: Record<string, string | string[]> = {}): WireResponse {
  return {
    status: 200,
    headers,
    body: Buffer.from(body),
    httpVersion: "1.1",
    tls: { protocol: null, cipher: null, peerChainDer: [] },
  };
}

/** Tools whose fail throws, enough for the pure helpers. */
const tools = {
  fail(message: string): never {
    throw new Error(message);
  },
  expect(cond: unknown, message: string) {
    if (!cond) throw new Error(message);
  },
} as unknown as CheckTools;

const FAMILIES = {
  "wfm.capabilities": capabilityChecks,
  "wfm.manifest": manifestChecks,
  "wfm.artifacts": artifactChecks,
  "wfm.deployment": deploymentChecks,
  "wfm.status": statusChecks,
};

describe("WFM state checks", () => {
  it("each module's checks sit in its own family, ids unique and kebab-case", () => {
    const ids = new Set<string>();
    for (const [family, checks] of Object.entries(FAMILIES)) {
      expect(checks.length).toBeGreaterThan(0);
      for (const c of checks) {
        expect(c.family, c.id).toBe(family);
        expect(c.id).toMatch(/^wfm\.[a-z]+\.[a-z0-9-]+$/);
        expect(ids.has(c.id), c.id).toBe(false);
        ids.add(c.id);
        expect(c.requirements.length, c.id).toBeGreaterThan(0);
        // SHOULD checks cite SHOULD requirements (a -s id or an all-SHOULD item) only.
        if (c.level === "SHOULD") expect(c.requirements, c.id).not.toContain("wfm-071");
      }
    }
  });

  it("wfmCheck derives the family from the id and refuses ids outside the suite", () => {
    const c = wfmCheck({
      id: "wfm.manifest.x",
      title: "x",
      requirements: ["wfm-037"],
      level: "MUST",
      run: async () => {},
    });
    expect(c.family).toBe("wfm.manifest");
    expect(c.suite).toBe("wfm");
    expect(() =>
      wfmCheck({
        id: "device.x.y",
        title: "",
        requirements: [],
        level: "MUST",
        run: async () => {},
      }),
    ).toThrow();
  });

  it("the capabilities body is valid for the rc.3 codec, hosting and non-hosting", () => {
    for (const nonHosting of [false, true]) {
      const body = capabilitiesBody("dev-1", { nonHosting });
      const decoded = decodeDeviceCapabilities(JSON.stringify(body));
      expect(decoded.problems.filter((p) => p.severity === "error")).toEqual([]);
    }
  });

  it("reads problem types leniently and compares the Margo fragment exactly", () => {
    const res = response(JSON.stringify({ type: `${PROBLEM_NS}#device-not-found` }), {
      "content-type": "application/json",
    });
    expect(isMargoType(problemType(res), "device-not-found")).toBe(true);
    expect(isMargoType(problemType(res), "gateway-not-found")).toBe(false);
    expect(problemType(response("not json"))).toBeUndefined();
  });

  it("keeps manifestVersion exact beyond 2^53", () => {
    const m = readManifest(
      tools,
      response('{"bundle":null,"deployments":[],"manifestVersion":18446744073709551615}'),
      "wfm-042",
    );
    expect(m.version).toBe(18446744073709551615n);
    expect(m.bundle).toBeNull();
  });

  it("hashes exact bytes, joins repeated headers, makes unique device ids", () => {
    expect(digestOf(Buffer.from(""))).toBe(
      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(header(response("", { vary: ["a", "b"] }), "Vary")).toBe("a, b");
    expect(uniqueDeviceId("x")).not.toBe(uniqueDeviceId("x"));
  });
});
