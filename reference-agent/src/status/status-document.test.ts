import { DEPLOYMENT_STATES, decodeDeploymentStatus, U64_MAX } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import { record } from "../../test/support/deployments.js";
import type { DeploymentRecord, WireState } from "../state/store.js";
import { overallState } from "./precedence.js";
import {
  componentError,
  componentNames,
  deploymentError,
  GATEWAY_CODES,
  gatewayError,
  StatusDocumentError,
  statusBody,
} from "./status-document.js";

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

function decoded(body: Uint8Array) {
  const d = decodeDeploymentStatus(body);
  expect(d.problems).toEqual([]);
  if (!d.value) throw new Error("no value");
  return d.value;
}

describe("statusBody (items 66-68)", () => {
  it("item 66, item 68: one entry per component in listed order; decodes back with no problems", () => {
    const rec: DeploymentRecord = {
      ...record("dep-1", "installing", { components: ["db", "web", "cache"], version: 12n }),
    };
    rec.components = [
      { name: "db", state: "installed" },
      { name: "web", state: "installing" },
      { name: "cache", state: "pending" },
    ];
    rec.state = overallState(rec.components);
    const body = statusBody(rec, "device-1");
    const doc = decoded(body);
    expect(doc.deploymentId).toBe("dep-1");
    expect(doc.deviceId).toBeUndefined();
    expect(doc.adoptedManifestVersion).toBe(12n);
    expect(DEPLOYMENT_STATES.toWire(doc.status?.state ?? 0)).toBe("installing");
    expect(doc.components.map((c) => [c.name, DEPLOYMENT_STATES.toWire(c.state)])).toEqual([
      ["db", "installed"],
      ["web", "installing"],
      ["cache", "pending"],
    ]);
    // The overall state the reconciler stored is the precedence of its components (item 69).
    const states = doc.components.map((c) => ({
      state: DEPLOYMENT_STATES.toWire(c.state) as WireState,
    }));
    expect(DEPLOYMENT_STATES.toWire(doc.status?.state ?? 0)).toBe(overallState(states));
    // Canonical JSON: lowercase states, sorted members, no error member when there is none.
    expect(text(body)).toBe(
      '{"adoptedManifestVersion":12,"components":[{"name":"db","state":"installed"},{"name":"web","state":"installing"},{"name":"cache","state":"pending"}],"deploymentId":"dep-1","status":{"state":"installing"}}',
    );
  });

  it("item 66: deviceId only for a child device; adoptedManifestVersion 2^64-1 survives exactly", () => {
    const rec = record("dep-2", "installed", { version: U64_MAX });
    expect(text(statusBody(rec, "gw-1/child-7", { childDevice: true }))).toContain(
      '"deviceId":"gw-1/child-7"',
    );
    const doc = decoded(statusBody(rec, "gw-1/child-7", { childDevice: true }));
    expect(doc.deviceId).toBe("gw-1/child-7");
    expect(doc.adoptedManifestVersion).toBe(U64_MAX);
    expect(text(statusBody(rec, "device-1"))).toContain(`"adoptedManifestVersion":${U64_MAX}`);
  });

  it("item 70: deployment and component errors carry their code, source and message", () => {
    const rec = record("dep-3", "failed", { components: ["web", "db"] });
    rec.components[1] = {
      name: "db",
      state: "failed",
      error: componentError("db", "COMPONENT_FAILED", "exit code 3"),
    };
    rec.components[0] = { name: "web", state: "pending" };
    rec.error = deploymentError(rec, "DEPLOYMENT_ERROR", "component db failed");
    const doc = decoded(statusBody(rec, "device-1"));
    expect(doc.status?.error).toEqual({
      code: "DEPLOYMENT_ERROR",
      source: "dep-3-name",
      message: "component db failed",
    });
    expect(doc.components[0]?.error).toBeUndefined();
    expect(doc.components[1]?.error).toEqual({
      code: "COMPONENT_FAILED",
      source: "db",
      message: "exit code 3",
    });
  });

  it("item 67: every rc.3 state encodes lowercase; a record breaking item 68 is refused", () => {
    for (const s of [
      "pending",
      "installing",
      "installed",
      "failed",
      "removing",
      "removed",
    ] as const) {
      expect(text(statusBody(record("d", s), "device-1"))).toContain(`"status":{"state":"${s}"}`);
    }
    const missing = record("d", "installing", { components: ["a", "b"] });
    missing.components = missing.components.slice(0, 1);
    expect(() => statusBody(missing, "device-1")).toThrow(StatusDocumentError);
    const reordered = record("d", "installing", { components: ["a", "b"] });
    reordered.components.reverse();
    expect(() => statusBody(reordered, "device-1")).toThrow(/do not match/);
    const bogus = { ...record("d", "installed"), state: "Installed" as WireState };
    expect(() => statusBody(bogus, "device-1")).toThrow(StatusDocumentError);
  });

  it("helpers: gateway codes keep the gateway id as source; names come from the YAML", () => {
    expect(gatewayError("gw-1", GATEWAY_CODES.autonomousPlacementUnsupported, "no")).toEqual({
      code: "103",
      source: "gw-1",
      message: "no",
    });
    expect(Object.values(GATEWAY_CODES)).toEqual(["101", "102", "103"]);
    expect(componentNames(record("d", "pending", { components: ["x", "y"] }).yaml)).toEqual([
      "x",
      "y",
    ]);
    expect(() => componentNames(new TextEncoder().encode("id: 1\n"))).toThrow(StatusDocumentError);
    // An unreadable name still names the deployment, by id.
    expect(
      deploymentError({ deploymentId: "d9", yaml: new TextEncoder().encode("[") }, "X", "m").source,
    ).toBe("d9");
  });
});
