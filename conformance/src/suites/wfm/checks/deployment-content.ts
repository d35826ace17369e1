/**
 * wfm.deployment: the ApplicationDeployment YAML the WFM produces (checklist 59-63, 83): ids,
 * metadata, profile selection and component order, extension propagation, parameter validation
 * and immutable settings. Judged on the YAML bytes the caller fetches; how they are served
 * (digests, headers) is wfm.artifacts' concern.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listFixtures } from "@margo/fixtures";
import {
  APPLICATION_ID,
  DEPLOYMENT_PROFILE_TYPES,
  DEVICE_ID_WITH_ASTERISK,
  type JsonObject,
  PATTERNS,
} from "@margo/proto/wire";
import { parse as parseYamlText } from "yaml";
import type { Check, CheckTools } from "../../../core/types.js";
import { isRefusalFor, type WfmCtx, WfmDriverRefused } from "../context.js";

/** gRPC refusals that can mean "these values are not acceptable" (never NOT_FOUND). */
const VALIDATION_REFUSALS = ["INVALID_ARGUMENT", "FAILED_PRECONDITION"] as const;

import {
  deployApp,
  EXTENSION_VARIANT,
  fetchDeploymentYaml,
  findDeployment,
  HarnessSetupError,
  isObject,
  member,
  type Placed,
  publishExtensionVariant,
  registerDevice,
  uniqueDeviceId,
  wfmCheck,
} from "./support.js";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The fixture's own description (what the WFM was given), read from @margo/fixtures. */
function fixtureDescription(name: string): JsonObject {
  const f = listFixtures().valid.find((x) => x.name === name);
  if (!f) throw new Error(`no valid fixture named ${name}`);
  return parseYamlText(readFileSync(join(f.dir, "margo.yaml"), "utf8")) as JsonObject;
}

/** Deploy and fetch the YAML the caller gets for it. */
async function deployedYaml(
  ctx: WfmCtx,
  t: CheckTools,
  short: string,
  requirement: string,
  opts: Parameters<typeof deployApp>[3] = {},
): Promise<{ placed: Placed; tree: JsonObject }> {
  const placed = await deployApp(ctx, t, short, opts);
  const { ref } = await findDeployment(t, placed.client.wire, placed.deploymentId, requirement);
  const { tree } = await fetchDeploymentYaml(t, placed.client.wire, ref, requirement);
  return { placed, tree };
}

/** spec.deploymentProfile of a YAML, or a fail of `requirement`. */
function profileOf(t: CheckTools, tree: JsonObject, requirement: string): JsonObject {
  const profile = member(member(tree, "spec"), "deploymentProfile");
  t.expect(
    isObject(profile),
    `the ApplicationDeployment has no spec.deploymentProfile mapping (${requirement})`,
  );
  return profile;
}

function componentsOf(profile: JsonObject): JsonObject[] {
  const list = member(profile, "components");
  return Array.isArray(list) ? list.filter(isObject) : [];
}

/** The extension variant deployed with its compose profile, as the caller fetches it. */
async function variantYaml(ctx: WfmCtx, t: CheckTools, short: string, requirement: string) {
  const published = await publishExtensionVariant(ctx, t);
  const client = ctx.clients[0];
  const deviceId = uniqueDeviceId(short);
  await registerDevice(t, client, deviceId);
  const { deploymentId } = await ctx.driver.deploy({
    applicationId: published.applicationId,
    version: published.version,
    profileType: "compose",
    clientId: client.clientId,
    deviceId,
  });
  const { ref } = await findDeployment(t, client.wire, deploymentId, requirement);
  return (await fetchDeploymentYaml(t, client.wire, ref, requirement)).tree;
}

export const deploymentChecks: Check<WfmCtx>[] = [
  wfmCheck({
    id: "wfm.deployment.id-is-uuid",
    title: "The ApplicationDeployment id is a UUID",
    requirements: ["wfm-059"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { tree } = await deployedYaml(ctx, t, "dep-uuid", "wfm-059");
      t.expect(
        typeof tree.id === "string" && UUID.test(tree.id),
        `the ApplicationDeployment id must be a UUID (wfm-059, item 59); got ${JSON.stringify(String(tree.id))}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.application-id",
    title: "spec.applicationId equals the description id and matches ^[-a-z0-9]{1,200}$",
    requirements: ["wfm-059"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { tree } = await deployedYaml(ctx, t, "dep-appid", "wfm-059");
      const expected = fixtureDescription("compose-single").id;
      const got = member(member(tree, "spec"), "applicationId");
      t.expect(
        got === expected,
        `spec.applicationId must equal the description's id ${JSON.stringify(expected)} (wfm-059, item 59); got ${JSON.stringify(String(got))}`,
      );
      t.expect(
        typeof got === "string" && APPLICATION_ID.test(got),
        `spec.applicationId must match ^[-a-z0-9]{1,200}$ (wfm-059); got ${JSON.stringify(got)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.metadata",
    title: "metadata.name, metadata.namespace and metadata.deviceId (the target) are present",
    requirements: ["wfm-060"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { placed, tree } = await deployedYaml(ctx, t, "dep-meta", "wfm-060");
      const md = member(tree, "metadata");
      for (const key of ["name", "namespace"]) {
        const v = member(md, key);
        t.expect(
          typeof v === "string" && v.length > 0,
          `metadata.${key} must be a non-empty string (wfm-060, item 60); got ${JSON.stringify(String(v))}`,
        );
      }
      const deviceId = member(md, "deviceId");
      t.expect(
        typeof deviceId === "string" && DEVICE_ID_WITH_ASTERISK.test(deviceId),
        `metadata.deviceId must match DeviceId_with_asterisk (wfm-060, item 60); got ${JSON.stringify(String(deviceId))}`,
      );
      t.expect(
        deviceId === placed.deviceId,
        `metadata.deviceId must name the target device ${placed.deviceId} (wfm-060); got ${deviceId}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.components-in-order",
    title: "Components appear in description order with their properties",
    requirements: ["wfm-061"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { tree } = await deployedYaml(ctx, t, "dep-order", "wfm-061", { app: "multi" });
      const described = member(fixtureDescription("compose-multi"), "deploymentProfiles");
      const first = Array.isArray(described) ? described[0] : undefined;
      const expected = componentsOf(first as JsonObject).map((c) => c.name);
      const got = componentsOf(profileOf(t, tree, "wfm-061")).map((c) => c.name);
      t.expect(
        JSON.stringify(got) === JSON.stringify(expected),
        `components must be passed in the description's order (wfm-061, item 61): expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.component-properties",
    title:
      "Served components have an oci:// repository, a SemVer revision and a helm|compose profile",
    requirements: ["wfm-104"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const { tree } = await deployedYaml(ctx, t, "dep-props", "wfm-104", { app: "multi" });
      const profile = profileOf(t, tree, "wfm-104");
      t.expect(
        (DEPLOYMENT_PROFILE_TYPES as readonly unknown[]).includes(profile.type),
        `deploymentProfile.type must be one of ${DEPLOYMENT_PROFILE_TYPES.join(", ")} (wfm-104, OpenAPI appDeploymentProfile); got ${JSON.stringify(String(profile.type))}`,
      );
      const components = componentsOf(profile);
      t.expect(components.length > 0, "the deployment profile lists no components (wfm-104)");
      for (const c of components) {
        const repository = member(member(c, "properties"), "repository");
        const revision = member(member(c, "properties"), "revision");
        t.expect(
          typeof repository === "string" && PATTERNS.repository.test(repository),
          `component ${String(c.name)}: properties.repository must match ^oci://.+ (wfm-104); got ${JSON.stringify(String(repository))}`,
        );
        t.expect(
          typeof revision === "string" && PATTERNS.revision.test(revision),
          `component ${String(c.name)}: properties.revision must be a SemVer without leading v (wfm-104); got ${JSON.stringify(String(revision))}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.deployment.only-selected-profile",
    title: "Only the selected profile's type and components are sent",
    requirements: ["wfm-061"],
    level: "MUST",
    timeoutMs: 45_000,
    async run(ctx, t: CheckTools) {
      const tree = await variantYaml(ctx, t, "dep-profile", "wfm-061");
      const profile = profileOf(t, tree, "wfm-061");
      t.expect(
        profile.type === "compose",
        `the compose profile was selected, so deploymentProfile.type must be compose (wfm-061, item 61); got ${JSON.stringify(String(profile.type))}`,
      );
      const names = componentsOf(profile).map((c) => c.name);
      t.expect(
        JSON.stringify(names) === JSON.stringify(EXTENSION_VARIANT.composeComponents),
        `only the compose profile's components ${JSON.stringify(EXTENSION_VARIANT.composeComponents)} may be sent (wfm-061, item 61); got ${JSON.stringify(names)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.extensions-copied",
    title: "Profile and component x-...-extensions are copied verbatim",
    requirements: ["wfm-062"],
    level: "MUST",
    timeoutMs: 45_000,
    async run(ctx, t: CheckTools) {
      const tree = await variantYaml(ctx, t, "dep-ext", "wfm-062");
      const profile = profileOf(t, tree, "wfm-062");
      const [pk, pv] = EXTENSION_VARIANT.profileExtension;
      t.expect(
        JSON.stringify(member(profile, pk)) === JSON.stringify(pv),
        `deploymentProfile.${pk} must be copied verbatim (wfm-062, item 62): expected ${JSON.stringify(pv)}, got ${JSON.stringify(member(profile, pk) ?? null)}`,
      );
      const [ck, cv] = EXTENSION_VARIANT.componentExtension;
      const component = componentsOf(profile).find(
        (c) => c.name === EXTENSION_VARIANT.composeComponents[0],
      );
      t.expect(
        JSON.stringify(member(component, ck)) === JSON.stringify(cv),
        `components[].${ck} must be copied verbatim (wfm-062, item 62): expected ${JSON.stringify(cv)}, got ${JSON.stringify(member(component, ck) ?? null)}`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.root-extensions-not-propagated",
    title: "Description-root x-...-extensions never reach the ApplicationDeployment",
    requirements: ["wfm-062"],
    level: "MUST",
    timeoutMs: 45_000,
    async run(ctx, t: CheckTools) {
      const tree = await variantYaml(ctx, t, "dep-root", "wfm-062");
      const text = JSON.stringify(tree);
      const [rk, rv] = EXTENSION_VARIANT.rootExtension;
      t.expect(
        !text.includes(rk) && !text.includes(rv.marker),
        `the description-root extension ${rk} must not be propagated to devices (wfm-062, item 62); the ApplicationDeployment contains it`,
      );
    },
  }),

  wfmCheck({
    id: "wfm.deployment.imports-unknown-extensions",
    title: "A description with unknown x-...-extensions is imported",
    requirements: ["wfm-083"],
    level: "MUST",
    timeoutMs: 45_000,
    async run(ctx, t: CheckTools) {
      try {
        const p = await publishExtensionVariant(ctx, t);
        t.note(`published ${p.applicationId} ${p.version}`);
      } catch (err) {
        if (err instanceof WfmDriverRefused)
          t.fail(
            `the WFM refused to import a valid description carrying unknown x-...-extensions (wfm-083, item 83): ${err.message}`,
          );
        throw err;
      }
    },
  }),

  wfmCheck({
    id: "wfm.deployment.parameters-applied",
    title: "Parameter values the user sets appear, resolved, in spec.parameters",
    requirements: ["wfm-063"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const values = { greeting: "conformance greeting", logLevel: "warn", storeQuota: 1.5 };
      const { tree } = await deployedYaml(ctx, t, "dep-params", "wfm-063", {
        app: "multi",
        parameters: values,
      });
      const params = member(member(tree, "spec"), "parameters");
      for (const [name, value] of Object.entries(values)) {
        const got = member(member(params, name), "value");
        t.expect(
          got === value,
          `spec.parameters.${name}.value must be the value the user set, ${JSON.stringify(value)} (wfm-063, item 63); got ${JSON.stringify(got ?? null)}`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.deployment.parameters-validated",
    title: "Parameter values violating configuration.schema are refused",
    requirements: ["wfm-063"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const apps = await ctx.apps(t);
      const client = ctx.clients[0];
      const deviceId = uniqueDeviceId("dep-invalid");
      await registerDevice(t, client, deviceId);
      const deployTo = (parameters: Record<string, unknown>) =>
        ctx.driver.deploy({
          applicationId: apps.multi.applicationId,
          version: apps.multi.version,
          clientId: client.clientId,
          deviceId,
          parameters,
          ...(apps.multi.vendorReference ? { vendorReference: apps.multi.vendorReference } : {}),
        });
      // Positive control: the same app with valid values to the same device must deploy, so a
      // refusal below is about the values (not an unknown app, device or a broken driver).
      const valid = { apiPort: 8088, greeting: "valid greeting" };
      let control: string;
      try {
        ({ deploymentId: control } = await deployTo(valid));
      } catch (err) {
        throw new HarnessSetupError(
          `positive control failed: deploying ${apps.multi.applicationId} with valid parameters ${JSON.stringify(valid)} to ${deviceId} did not succeed (${err instanceof Error ? err.message : String(err)}); the refusals below would mean nothing`,
        );
      }
      // Removed again so a WFM allowing one deployment of an app per device has no reason to refuse.
      await ctx.driver.undeploy(control);
      t.note(`control: valid parameters deployed as ${control} (then undeployed)`);
      // compose-multi: apiPort is an integer in [1024, 65535], greeting 1-64 characters.
      const bad: Array<[string, Record<string, unknown>]> = [
        ["apiPort below minValue 1024", { apiPort: 80 }],
        ["apiPort not an integer", { apiPort: "eighty" }],
        ["greeting longer than maxLength 64", { greeting: "x".repeat(65) }],
      ];
      for (const [why, parameters] of bad) {
        let deploymentId: string | undefined;
        try {
          ({ deploymentId } = await deployTo(parameters));
        } catch (err) {
          if (isRefusalFor(err, VALIDATION_REFUSALS)) {
            t.note(`refused (${why}): ${err.message}`);
            continue;
          }
          throw err;
        }
        await ctx.driver.undeploy(deploymentId).catch(() => undefined);
        t.fail(
          `the WFM accepted a deployment with ${why} (${JSON.stringify(parameters)}); values must be validated against configuration.schema before install (wfm-063, item 63)`,
        );
      }
    },
  }),

  wfmCheck({
    id: "wfm.deployment.immutable-setting-kept",
    title: "An immutable setting cannot be changed by an update",
    requirements: ["wfm-063"],
    level: "MUST",
    async run(ctx, t: CheckTools) {
      const settings = (
        member(member(fixtureDescription("compose-multi"), "configuration"), "sections") as
          | JsonObject[]
          | undefined
      )?.flatMap((s) => (member(s, "settings") as JsonObject[] | undefined) ?? []);
      const immutable = settings?.find((s) => s.immutable === true);
      if (!immutable || typeof immutable.parameter !== "string")
        t.skip("the compose-multi fixture has no immutable setting");
      const parameter = immutable.parameter;
      const placed = await deployApp(ctx, t, "dep-immut", {
        app: "multi",
        parameters: { [parameter]: 9191 },
      });
      // Positive control: updating a mutable setting of the same deployment must succeed, so a
      // refusal below is about immutability (not update unsupported or the id unknown).
      const mutable = settings?.find(
        (s) => s.immutable !== true && s.parameter === "greeting",
      )?.parameter;
      if (typeof mutable !== "string")
        throw new HarnessSetupError("the compose-multi fixture has no mutable greeting setting");
      try {
        // The immutable value goes along unchanged: an update may carry the full parameter set.
        await ctx.driver.update(placed.deploymentId, {
          [parameter]: 9191,
          [mutable]: "updated greeting",
        });
      } catch (err) {
        throw new HarnessSetupError(
          `positive control failed: updating mutable setting ${mutable} of ${placed.deploymentId} did not succeed (${err instanceof Error ? err.message : String(err)}); a refused immutable update would mean nothing`,
        );
      }
      t.note(`control: mutable ${mutable} updated`);
      try {
        await ctx.driver.update(placed.deploymentId, {
          [parameter]: 9292,
          [mutable]: "updated greeting",
        });
      } catch (err) {
        if (isRefusalFor(err, [...VALIDATION_REFUSALS, "ALREADY_EXISTS"])) {
          t.note(`update refused: ${err.message}`);
          return;
        }
        throw err;
      }
      t.fail(
        `the WFM accepted an update changing immutable setting ${parameter} from 9191 to 9292 (wfm-063, item 63)`,
      );
    },
  }),
];
