import type {
  ApplicationDeployment,
  ApplicationDeploymentMetadata,
  ApplicationDeploymentProfile,
  ApplicationDeploymentSpec,
} from "../gen/margo/model/v1/application_deployment.js";
import type { Component, Parameter } from "../gen/margo/model/v1/application_description.js";
import type { DeviceConstraints } from "../gen/margo/model/v1/device_constraints.js";
import { pointer } from "../problem.js";
import { type Decoded, decodeYamlWith, encodeYaml, extensionTree } from "./codec.js";
import type { JsonValue } from "./json-value.js";
import { setOwn } from "./json-value.js";
import {
  readComponent,
  readDeviceConstraints,
  readParameter,
  writeComponent,
  writeDeviceConstraints,
  writeParameter,
} from "./profile-parts.js";
import { flattenExtensions, type Reader } from "./reader.js";

/** DEPLOYMENT_MEDIA_TYPE is the Content-Type of `GET /api/v1/deployments/{id}/{digest}`. */
export const DEPLOYMENT_MEDIA_TYPE = "application/yaml";

/** OpenAPI DeviceId_with_asterisk: a trailing "/*" lets a gateway pick the child device. */
export const DEVICE_ID_WITH_ASTERISK = /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*(\/\*)?$/;

/** OpenAPI appDeploymentSpec.applicationId pattern. */
export const APPLICATION_ID = /^[-a-z0-9]{1,200}$/;

/**
 * The OpenAPI appDeploymentProfile.type enum is [helm, compose]: `custom` profiles exist in
 * descriptions but have no desired-state form in rc.3 (digest open question 3).
 */
export const DEPLOYMENT_PROFILE_TYPES = ["helm", "compose"] as const;

/** Desired-state documents before rc.3 were Kubernetes-style resources (digest 6.3). */
const LEGACY_ROOT = {
  apiVersion: "rc.3 ApplicationDeployment documents carry no apiVersion",
  kind: "rc.3 ApplicationDeployment documents carry no kind",
};

function readMetadata(
  r: Reader,
  v: JsonValue,
  at: string,
): ApplicationDeploymentMetadata | undefined {
  const obj = r.object(v, at, "metadata");
  if (!obj) return undefined;
  // The OpenAPI lists `annotations` as required but defines no such property (a leftover of
  // metadata.annotations.id, digest open question 4): neither required nor kept here.
  r.members(obj, at, {
    known: ["name", "namespace", "deviceId", "labels"],
    closed: false,
    legacy: { annotations: "rc.3 puts the deployment id at the top-level id" },
  });
  const name = r.string(obj, "name", at, { required: true });
  const namespace = r.string(obj, "namespace", at, { required: true });
  const deviceId = r.string(obj, "deviceId", at, {
    required: true,
    pattern: DEVICE_ID_WITH_ASTERISK,
  });
  const labels: Record<string, string> = {};
  let ok = true;
  if (Object.hasOwn(obj, "labels")) {
    const here = at + pointer("labels");
    const l = r.object(obj.labels, here, "labels");
    if (!l) ok = false;
    for (const [k, value] of Object.entries(l ?? {})) {
      if (typeof value === "string") setOwn(labels, k, value);
      else {
        r.error("wire.type", here + pointer(k), "label values must be strings");
        ok = false;
      }
    }
  }
  if (!ok || name === undefined || namespace === undefined || deviceId === undefined)
    return undefined;
  return { name, namespace, deviceId, labels };
}

function readProfile(
  r: Reader,
  v: JsonValue,
  at: string,
): ApplicationDeploymentProfile | undefined {
  const obj = r.object(v, at, "deploymentProfile");
  if (!obj) return undefined;
  const extensions = r.members(obj, at, {
    known: ["type", "components", "deviceConstraints"],
    closed: true,
    extensions: true,
  });
  const type = r.string(obj, "type", at, { required: true, enum: DEPLOYMENT_PROFILE_TYPES });
  const items = r.array(obj, "components", at, { required: true });
  const components: Component[] = [];
  let ok = items !== undefined;
  items?.forEach((item, i) => {
    const c = readComponent(r, item, at + pointer("components", i));
    if (c) components.push(c);
    else ok = false;
  });
  let deviceConstraints: DeviceConstraints | undefined;
  if (Object.hasOwn(obj, "deviceConstraints")) {
    deviceConstraints = readDeviceConstraints(
      r,
      obj.deviceConstraints ?? null,
      at + pointer("deviceConstraints"),
    );
    if (!deviceConstraints) ok = false;
  }
  if (!ok || type === undefined) return undefined;
  return { type, components, ...(deviceConstraints ? { deviceConstraints } : {}), extensions };
}

function readSpec(r: Reader, v: JsonValue, at: string): ApplicationDeploymentSpec | undefined {
  const obj = r.object(v, at, "spec");
  if (!obj) return undefined;
  const extensions = r.members(obj, at, {
    known: ["applicationId", "deploymentProfile", "parameters"],
    closed: true,
    extensions: true,
  });
  const applicationId = r.string(obj, "applicationId", at, {
    required: true,
    pattern: APPLICATION_ID,
  });
  const pv = r.present(obj, "deploymentProfile", at, true);
  const deploymentProfile =
    pv === undefined ? undefined : readProfile(r, pv, at + pointer("deploymentProfile"));
  const parameters: Record<string, Parameter> = {};
  let ok = true;
  if (Object.hasOwn(obj, "parameters")) {
    const here = at + pointer("parameters");
    const params = r.object(obj.parameters, here, "parameters");
    if (!params) ok = false;
    for (const [name, value] of Object.entries(params ?? {})) {
      const p = readParameter(r, value, here + pointer(name), true);
      if (p) setOwn(parameters, name, p);
      else ok = false;
    }
  }
  if (!ok || applicationId === undefined || !deploymentProfile) return undefined;
  return { applicationId, deploymentProfile, parameters, extensions };
}

/** readApplicationDeployment maps a parsed ApplicationDeployment document. */
export function readApplicationDeployment(
  tree: JsonValue,
  r: Reader,
): ApplicationDeployment | undefined {
  const obj = r.object(tree, "", "ApplicationDeployment");
  if (!obj) return undefined;
  r.members(obj, "", { known: ["id", "metadata", "spec"], closed: false, legacy: LEGACY_ROOT });
  // The OpenAPI appDeploymentManifest does not require `id` (the LinkML does, as a UUID): the
  // OpenAPI wins, so an absent id reads as "".
  const id = r.string(obj, "id", "");
  const mv = r.present(obj, "metadata", "", true);
  const metadata = mv === undefined ? undefined : readMetadata(r, mv, pointer("metadata"));
  const sv = r.present(obj, "spec", "", true);
  const spec = sv === undefined ? undefined : readSpec(r, sv, pointer("spec"));
  if (!metadata || !spec || (Object.hasOwn(obj, "id") && id === undefined)) return undefined;
  return { id: id ?? "", metadata, spec };
}

function sortedEntries<T>(map: Record<string, T> | undefined): Array<[string, T]> {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function writeApplicationDeployment(d: ApplicationDeployment): JsonValue {
  const m = d.metadata;
  const s = d.spec;
  const p = s?.deploymentProfile;
  let profile: Record<string, unknown> | undefined;
  if (p) {
    const at = pointer("spec", "deploymentProfile");
    profile = {
      type: p.type,
      components: p.components.map((c, i) => writeComponent(c, at + pointer("components", i))),
      deviceConstraints: p.deviceConstraints
        ? writeDeviceConstraints(p.deviceConstraints, at + pointer("deviceConstraints"))
        : undefined,
    };
    flattenExtensions(profile, extensionTree("deployment profile", p.extensions, at), at);
  }
  let spec: Record<string, unknown> | undefined;
  if (s) {
    // Maps have no spec order; sorting their keys makes equal content give equal bytes.
    const params = sortedEntries(s.parameters);
    const parameters: Record<string, JsonValue> = {};
    for (const [name, param] of params) {
      setOwn(parameters, name, writeParameter(param, pointer("spec", "parameters", name)));
    }
    spec = {
      applicationId: s.applicationId,
      deploymentProfile: profile,
      parameters: params.length ? parameters : undefined,
    };
    flattenExtensions(spec, extensionTree("spec", s.extensions, pointer("spec")), pointer("spec"));
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of sortedEntries(m?.labels)) setOwn(labels, k, v);
  return {
    id: d.id === "" ? undefined : d.id,
    metadata: m
      ? {
          name: m.name,
          namespace: m.namespace,
          deviceId: m.deviceId,
          labels: Object.keys(labels).length ? labels : undefined,
        }
      : undefined,
    spec,
  } as JsonValue;
}

/**
 * encodeApplicationDeployment writes the YAML a WFM serves for one deployment, deterministically
 * (spec field order, sorted map keys, extensions flattened at spec, deploymentProfile and each
 * component). Hash these bytes and serve exactly them: never re-serialise before hashing.
 */
export function encodeApplicationDeployment(value: ApplicationDeployment): Uint8Array {
  return encodeYaml(
    "ApplicationDeployment",
    writeApplicationDeployment(value),
    readApplicationDeployment,
  );
}

/** decodeApplicationDeployment reads ApplicationDeployment YAML; never throws. */
export function decodeApplicationDeployment(
  input: Uint8Array | string,
): Decoded<ApplicationDeployment> {
  return decodeYamlWith(input, readApplicationDeployment);
}
