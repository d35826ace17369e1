import { DeviceCapabilitiesManifest } from "@margo/proto";
import { decodeDeviceCapabilities } from "@margo/proto/wire";
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../config.js";
import { buildCapabilities, encodeCapabilities } from "./capabilities-document.js";
import { readHostFacts } from "./host-facts.js";

const config = defaultConfig("/tmp", {
  deviceId: "edge-7",
  wfmUrl: "https://127.0.0.1:9443",
  identityDir: "/tmp/id",
});
config.device.labels = { site: "plant-3", tier: 2, gpu: false, zones: ["a", "b"] };

describe("capabilities document (items 25, 30-33)", () => {
  it("item 30: real host facts encode and decode back with no problems", () => {
    const facts = readHostFacts("/tmp", () => {});
    const body = encodeCapabilities(buildCapabilities(config, facts, ["compose"]));
    const decoded = decodeDeviceCapabilities(body);
    expect(decoded.problems).toEqual([]);
    const p = decoded.value?.properties;
    expect(p?.id).toBe("edge-7");
    expect(p?.vendor).toBe("margo-reference");
    expect(p?.serialNumber).toBe("edge-7");
    expect(p?.otelCollector).toBe(true);
    expect(p?.supportedRuntimes).toEqual(["oci"]);
    expect(p?.supportedDeploymentTypes).toEqual(["compose"]);
    expect(p?.memory).toBe(facts.memory);
    expect(p?.cpus[0]?.cores).toBe(facts.cpus[0]?.cores);
    expect(decoded.value?.labels).toEqual(config.device.labels);
    const json = JSON.parse(Buffer.from(body).toString("utf8"));
    expect(json.properties.cpus[0].architecture).toBe(facts.cpus[0]?.architecture);
    expect(json.properties.interfaces.length).toBe(facts.interfaces.length);
  });

  it("item 30: same inputs give the same bytes; types sorted and de-duplicated", () => {
    const facts = readHostFacts("/tmp", () => {});
    const a = encodeCapabilities(buildCapabilities(config, facts, ["helm", "compose"]));
    const b = encodeCapabilities(buildCapabilities(config, facts, ["compose", "helm", "compose"]));
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect(decodeDeviceCapabilities(a).value?.properties?.supportedDeploymentTypes).toEqual([
      "compose",
      "helm",
    ]);
  });

  it("no runtime available: supportedDeploymentTypes is left out (never reported empty or guessed)", () => {
    const facts = { cpus: [{ cores: 2 }], interfaces: [], peripherals: [] };
    const body = encodeCapabilities(buildCapabilities(config, facts, []));
    const json = JSON.parse(Buffer.from(body).toString("utf8"));
    expect(json.properties).not.toHaveProperty("supportedDeploymentTypes");
    expect(json.properties.cpus).toEqual([{ cores: 2 }]);
    const decoded = decodeDeviceCapabilities(body);
    expect(decoded.problems.filter((x) => x.severity === "error")).toEqual([]);
    expect(DeviceCapabilitiesManifest.fromJSON(json).properties?.id).toBe("edge-7");
  });
});
