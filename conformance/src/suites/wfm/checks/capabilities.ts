/**
 * wfm.capabilities: the WFM's intake of device capabilities (checklist 26-29, 34, 35; OpenAPI
 * PUT/DELETE /api/v1/capabilities/{deviceId}). Each check uses its own device ids, judges status
 * codes and problem `type` only (the problem's media type and shape are wfm.errors' concern).
 */
import type { Check, CheckTools } from "../../../core/types.js";
import { type WfmCtx, WfmDriverRefused, WfmDriverUnsupported } from "../context.js";
import {
  bodyHint,
  capabilitiesBody,
  deleteCapabilities,
  expectProblem,
  member,
  parseBody,
  putCapabilities,
  registerDevice,
  uniqueDeviceId,
  wfmCheck,
} from "./support.js";

/** PUT a body that breaks the schema in one named way and expect 422 #semantic-error (item 29). */
function semanticCheck(
  what: string,
  title: string,
  breakIt: (deviceId: string) => unknown,
): Check<WfmCtx> {
  return wfmCheck({
    id: `wfm.capabilities.${what}-422`,
    title,
    requirements: ["wfm-029"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId(`cap-${what}`.slice(0, 20));
      const res = await putCapabilities(t, ctx.clients[0].wire, deviceId, breakIt(deviceId));
      expectProblem(t, res, 422, "semantic-error", "wfm-029, item 29");
    },
  });
}

/** Accepted = 200 or 201 (which one is judged by the create/replace checks). */
function expectAccepted(t: CheckTools, status: number, why: string, hint: string): void {
  t.expect(status === 200 || status === 201, `${why}: expected 200 or 201, got ${status}${hint}`);
}

export const capabilityChecks: Check<WfmCtx>[] = [
  wfmCheck({
    id: "wfm.capabilities.put-create-201",
    title: "PUT capabilities of a new device answers 201 Created",
    requirements: ["wfm-026"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId("cap-create");
      const res = await putCapabilities(
        t,
        ctx.clients[0].wire,
        deviceId,
        capabilitiesBody(deviceId),
      );
      t.expect(
        res.status === 201,
        `first PUT /api/v1/capabilities/${deviceId}: expected 201 Created (wfm-026, item 26), got ${res.status}${bodyHint(res)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.put-replace-200",
    title: "PUT capabilities of a known device answers 200 OK",
    requirements: ["wfm-026"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const wire = ctx.clients[0].wire;
      const deviceId = uniqueDeviceId("cap-replace");
      const first = await putCapabilities(t, wire, deviceId, capabilitiesBody(deviceId));
      expectAccepted(t, first.status, "first PUT", bodyHint(first));
      const changed = capabilitiesBody(deviceId, { extraProperties: { memory: "4Gi" } });
      const res = await putCapabilities(t, wire, deviceId, changed);
      t.expect(
        res.status === 200,
        `second PUT (replace) of ${deviceId}: expected 200 OK (wfm-026, item 26), got ${res.status}${bodyHint(res)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.delete-204",
    title: "DELETE capabilities of a registered device answers 204 No Content",
    requirements: ["wfm-026"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const client = ctx.clients[0];
      const deviceId = uniqueDeviceId("cap-delete");
      await registerDevice(t, client, deviceId);
      const res = await deleteCapabilities(t, client.wire, deviceId);
      t.expect(
        res.status === 204,
        `DELETE /api/v1/capabilities/${deviceId}: expected 204 (wfm-026, item 26), got ${res.status}${bodyHint(res)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.delete-unknown-404",
    title: "DELETE of a device never reported answers 404 #device-not-found",
    requirements: ["wfm-028"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId("cap-unknown");
      const res = await deleteCapabilities(t, ctx.clients[0].wire, deviceId);
      expectProblem(t, res, 404, "device-not-found", "wfm-028, item 28");
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.child-before-parent-404",
    title: "PUT of a gateway child before its gateway answers 404 #gateway-not-found",
    requirements: ["wfm-027"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const gateway = uniqueDeviceId("cap-gw");
      const child = `${gateway}/child-1`;
      const res = await putCapabilities(t, ctx.clients[0].wire, child, capabilitiesBody(child));
      expectProblem(t, res, 404, "gateway-not-found", "wfm-027, item 27");
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.malformed-json-400",
    title: "PUT with a body that is not JSON answers 400 #invalid-request",
    requirements: ["wfm-029"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId("cap-malformed");
      const text = `{"properties": {"id": "${deviceId}", "vendor": "x"`;
      const res = await putCapabilities(t, ctx.clients[0].wire, deviceId, text);
      expectProblem(t, res, 400, "invalid-request", "wfm-029, item 29");
    },
  }),

  semanticCheck(
    "bad-enum",
    "A capabilities body with an interface type outside the enum answers 422 #semantic-error",
    (id) => capabilitiesBody(id, { extraProperties: { interfaces: [{ type: "carrier-pigeon" }] } }),
  ),
  semanticCheck(
    "missing-id",
    "A capabilities body without properties.id answers 422 #semantic-error",
    (id) => {
      const body = capabilitiesBody(id);
      delete (body.properties as Record<string, unknown>).id;
      return body;
    },
  ),
  semanticCheck(
    "empty-runtimes",
    "A hosting device reporting an empty supportedRuntimes answers 422 #semantic-error",
    (id) => capabilitiesBody(id, { extraProperties: { supportedRuntimes: [] } }),
  ),
  semanticCheck(
    "unknown-property",
    "A capabilities body with an unknown non-extension root property answers 422 #semantic-error",
    (id) => capabilitiesBody(id, { extraRoot: { colour: "blue" } }),
  ),

  wfmCheck({
    id: "wfm.capabilities.semantic-error-lists-errors",
    title: "A 422 for a capabilities body lists the offending fields in errors[]",
    requirements: ["wfm-029s"],
    level: "SHOULD",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId("cap-errors");
      const body = capabilitiesBody(deviceId);
      delete (body.properties as Record<string, unknown>).vendor;
      const res = await putCapabilities(t, ctx.clients[0].wire, deviceId, body);
      if (res.status !== 422)
        t.skip(`the WFM answered ${res.status}, not 422; wfm.capabilities.*-422 judge that`);
      const errors = member(parseBody(res), "errors");
      t.expect(
        Array.isArray(errors) && errors.length > 0,
        `422 #semantic-error should carry a non-empty errors[] naming the fields (wfm-029s, item 29); got ${errors === undefined ? "no errors member" : JSON.stringify(errors)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.unknown-type-mapped-custom",
    title: "An unknown supportedDeploymentTypes value is accepted and mapped to custom",
    requirements: ["wfm-034"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const client = ctx.clients[0];
      const deviceId = uniqueDeviceId("cap-custom");
      const body = capabilitiesBody(deviceId, {
        supportedDeploymentTypes: ["compose", "wasm-conformance"],
      });
      const res = await putCapabilities(t, client.wire, deviceId, body);
      t.expect(
        res.status === 200 || res.status === 201,
        `an unknown supportedDeploymentTypes value must be mapped to custom, not refused (wfm-034, item 34): expected 200/201, got ${res.status}${bodyHint(res)}`,
      );
      let read: Awaited<ReturnType<WfmCtx["driver"]["capabilities"]>>;
      try {
        read = await ctx.driver.capabilities(client.clientId, deviceId);
      } catch (err) {
        // Only a driver without the operation is a skip. "Not found" after the WFM answered 2xx
        // to the PUT means it did not keep the device: that is the finding, not a skip.
        if (err instanceof WfmDriverUnsupported)
          t.skip(`the driver cannot read capabilities back: ${err.message}`);
        if (err instanceof WfmDriverRefused)
          t.fail(
            `the WFM accepted ${deviceId} (HTTP ${res.status}) but its driver refuses to read it back (${err.code}: ${err.message}); the device must be kept, its unknown type mapped to custom (wfm-034, item 34)`,
          );
        throw err;
      }
      t.expect(
        read.found && read.capabilities?.properties !== undefined,
        `the WFM accepted ${deviceId} (HTTP ${res.status}) but its driver does not know the device (wfm-034)`,
      );
      const types = read.capabilities?.properties?.supportedDeploymentTypes ?? [];
      t.note(`supportedDeploymentTypes as the WFM holds them: ${JSON.stringify(types)}`);
      t.expect(
        types.includes("custom") && !types.includes("wasm-conformance"),
        `unknown deployment type "wasm-conformance" must be held as "custom" (wfm-034, item 34); the WFM holds ${JSON.stringify(types)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.capabilities.unknown-extension-accepted",
    title: "Unknown x-...-extensions in capabilities are accepted",
    requirements: ["wfm-035"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const deviceId = uniqueDeviceId("cap-ext");
      const body = capabilitiesBody(deviceId, {
        extraRoot: {
          "x-conformance-unknown-extensions": { anything: [1, "two", { three: true }] },
        },
      });
      const res = await putCapabilities(t, ctx.clients[0].wire, deviceId, body);
      t.expect(
        res.status === 200 || res.status === 201,
        `capabilities with an unknown x-conformance-unknown-extensions member must be accepted (wfm-035, item 35): expected 200/201, got ${res.status}${bodyHint(res)}`,
      );
    },
  }),
];
