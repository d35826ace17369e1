/**
 * device.capabilities: what the device says about itself on `PUT /api/v1/capabilities/{deviceId}`
 * (digest 8; items 25, 30, 33). Judged from the bodies the instrumented WFM received.
 */
import { decodeDeviceCapabilities } from "@margo/proto/wire";
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx } from "../context.js";
import { deviceCheck } from "./support.js";

const CAPABILITIES_PATH = "/api/v1/capabilities/";

/** The latest capabilities body the device sent for its configured id, or fail. */
function latestCapabilities(ctx: DeviceCtx, t: CheckTools, item: string) {
  const id = ctx.device.deviceId;
  const mine = ctx.wfm.capabilities().filter((c) => c.deviceId === id);
  const last = mine.at(-1);
  if (!last) {
    t.fail(
      `no PUT ${CAPABILITIES_PATH}${id} received after Configure (${item}); devices seen: ${JSON.stringify(
        ctx.wfm.capabilities().map((c) => c.deviceId),
      )}`,
    );
  }
  return last;
}

function props(body: Record<string, unknown>): Record<string, unknown> {
  const p = body.properties;
  return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

const firstExchange = deviceCheck({
  id: "device.capabilities.first-exchange",
  title: "The first request after connecting is the capabilities PUT for the configured device id",
  requirements: ["device-025"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    // A reset device may still poll under its previous identity until Configure replaces it:
    // judge only the requests of the client configured now.
    const client = ctx.wfm.clientCredentials().clientId;
    const id = ctx.device.deviceId;
    const first = await ctx.wfm.waitFor(
      t,
      "the device's first request",
      () => ctx.wfm.requests().find((r) => r.clientId === undefined || r.clientId === client),
      10_000,
    );
    t.note(`first request: ${first.method} ${first.path} -> ${first.status}`);
    const expected = `${CAPABILITIES_PATH}${id}`;
    t.expect(
      first.method === "PUT" && first.path.split("?")[0] === expected,
      `item 25: the first exchange after connecting must report capabilities (PUT ${expected}); the first request was ${first.method} ${first.path}`,
    );
    const body = latestCapabilities(ctx, t, "item 25");
    t.expectEqual(
      props(body.body).id,
      id,
      "capabilities properties.id (the device id in the path)",
    );
  },
});

const hostingFields = deviceCheck({
  id: "device.capabilities.hosting-fields",
  title:
    "A workload-hosting device reports a valid body with otelCollector true, runtimes, deployment types, cpus, memory and storage (peripherals and interfaces as lists when present)",
  requirements: ["device-030"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const id = ctx.device.deviceId;
    await ctx.wfm.waitFor(
      t,
      `a capabilities PUT for ${id}`,
      () => ctx.wfm.capabilities().find((c) => c.deviceId === id),
      10_000,
    );
    const cap = latestCapabilities(ctx, t, "item 30");
    const decoded = decodeDeviceCapabilities(JSON.stringify(cap.body));
    const errors = decoded.problems.filter((p) => p.severity === "error");
    t.expect(
      errors.length === 0,
      `item 30: the capabilities body does not conform to the OpenAPI DeviceCapabilitiesManifest: ${errors
        .slice(0, 5)
        .map((p) => `${p.pointer || "/"}: ${p.message}`)
        .join("; ")}`,
      { problems: errors },
    );
    const p = props(cap.body);
    const missing: string[] = [];
    if (p.otelCollector !== true)
      missing.push(`otelCollector must be true (got ${JSON.stringify(p.otelCollector)})`);
    for (const k of ["supportedRuntimes", "supportedDeploymentTypes", "cpus"]) {
      const v = p[k];
      if (!Array.isArray(v) || v.length === 0) missing.push(`${k} must list at least one entry`);
    }
    for (const k of ["peripherals", "interfaces"]) {
      // The OpenAPI does not require them, and an absent list tells the WFM what an empty one
      // does (no such hardware): absent is read as none; anything else must be a list.
      if (p[k] === undefined) t.note(`${k} absent: read as none`);
      else if (!Array.isArray(p[k])) missing.push(`${k} must be an array`);
    }
    for (const k of ["memory", "storage"]) {
      if (typeof p[k] !== "string" || p[k] === "") missing.push(`${k} must be present`);
    }
    t.expect(
      missing.length === 0,
      `item 30: a workload-hosting device must report: ${missing.join("; ")}`,
      { properties: p },
    );
  },
});

const customLabels = deviceCheck({
  id: "device.capabilities.custom-labels",
  title: "A device reporting a custom runtime or deployment type also reports labels",
  requirements: ["device-033"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const id = ctx.device.deviceId;
    await ctx.wfm.waitFor(
      t,
      `a capabilities PUT for ${id}`,
      () => ctx.wfm.capabilities().find((c) => c.deviceId === id),
      10_000,
    );
    const cap = latestCapabilities(ctx, t, "item 33");
    const p = props(cap.body);
    const lists = [p.supportedRuntimes, p.supportedDeploymentTypes].flatMap((v) =>
      Array.isArray(v) ? v : [],
    );
    if (!lists.includes("custom"))
      t.skip("the device reports no custom runtime or deployment type");
    const labels = cap.body.labels;
    t.expect(
      labels !== null &&
        typeof labels === "object" &&
        !Array.isArray(labels) &&
        Object.keys(labels).length > 0,
      `item 33: a device reporting "custom" must report labels (got ${JSON.stringify(labels)})`,
    );
  },
});

/**
 * The capabilities body as it came on the wire, judged strictly: @margo/proto exposes no JSON
 * Schema of its own, so the codec's strict decode stands in for the rc.3 DeviceCapabilitiesManifest
 * schema (required identity fields, enums, unknown non-extension members, x-<name>-extensions
 * keys, scalar label values). The raw bytes are decoded, not a re-serialised parse, so what a
 * lenient parse would smooth over (duplicate keys, big numbers) still counts.
 */
const schemaValid = deviceCheck({
  id: "device.capabilities.schema-valid",
  title: "The capabilities body validates against the OpenAPI DeviceCapabilitiesManifest schema",
  requirements: ["device-100"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const id = ctx.device.deviceId;
    const put = await ctx.wfm.waitFor(
      t,
      `a capabilities PUT for ${id}`,
      () =>
        ctx.wfm
          .requests()
          .find((r) => r.method === "PUT" && r.path.split("?")[0] === `${CAPABILITIES_PATH}${id}`),
      10_000,
    );
    const decoded = decodeDeviceCapabilities(new Uint8Array(put.body));
    const errors = decoded.problems.filter((p) => p.severity === "error");
    const warnings = decoded.problems.filter((p) => p.severity !== "error");
    if (warnings.length > 0)
      t.note(
        `not errors, but worth a look: ${warnings.map((p) => `${p.pointer || "/"}: ${p.message}`).join("; ")}`,
      );
    t.expect(
      errors.length === 0,
      `device-100: the body of PUT ${put.path} does not validate against the OpenAPI DeviceCapabilitiesManifest schema: ${errors
        .slice(0, 8)
        .map((p) => `${p.pointer || "/"}: ${p.message}`)
        .join("; ")}${errors.length > 8 ? ` (+${errors.length - 8} more)` : ""}`,
      { problems: errors },
    );
  },
});

export const capabilityChecks: Check<DeviceCtx>[] = [
  firstExchange,
  hostingFields,
  schemaValid,
  customLabels,
];
