import { CpuArchitecture } from "../gen/margo/model/v1/common.js";
import {
  type DeviceCapabilitiesManifest,
  type DeviceCommunicationInterface,
  type DeviceCpu,
  type DevicePeripheral,
  type DeviceProperties,
  InterfaceType,
  PeripheralType,
} from "../gen/margo/model/v1/device_capabilities.js";
import { pointer } from "../problem.js";
import { type Decoded, decodeJson, encodeJson, extensionTree, mustTree } from "./codec.js";
import { DEVICE_ID } from "./deployment-status.js";
import { enumMap } from "./enum-map.js";
import { type JsonObject, type JsonValue, setOwn } from "./json-value.js";
import { copyJson, flattenExtensions, kindOf, type Reader } from "./reader.js";

/** Devices report only these architectures (OpenAPI cpus[].architecture); apps may ask for more. */
export const DEVICE_ARCHITECTURES = enumMap<CpuArchitecture>(
  CpuArchitecture,
  "CPU_ARCHITECTURE_",
  "lower",
  ["amd64", "arm64", "arm"],
);
/** gpu, display, camera, microphone, speaker. */
export const PERIPHERAL_TYPES = enumMap<PeripheralType>(
  PeripheralType,
  "PERIPHERAL_TYPE_",
  "lower",
);
/** ethernet, wifi, cellular, bluetooth, usb, canbus, rs232. */
export const INTERFACE_TYPES = enumMap<InterfaceType>(InterfaceType, "INTERFACE_TYPE_", "lower");
/** The proto keeps runtimes and deployment types as strings (the lists will grow); these are rc.3's. */
export const SUPPORTED_RUNTIMES = ["oci", "custom"] as const;
/** Unknown deployment types decode as "custom" with a warning (checklist 34). */
export const SUPPORTED_DEPLOYMENT_TYPES = ["helm", "compose", "custom"] as const;

const PROPERTY_NAMES = [
  "id",
  "vendor",
  "modelNumber",
  "serialNumber",
  "cpus",
  "memory",
  "storage",
  "peripherals",
  "interfaces",
  "otelCollector",
  "supportedRuntimes",
  "supportedDeploymentTypes",
];

/** Pre-rc.3 capability members (digest 8): roles were replaced by supportedDeploymentTypes. */
const LEGACY_PROPERTIES = {
  roles: "replaced by supportedDeploymentTypes/supportedRuntimes in rc.3",
  resources:
    "rc.3 reports cpus, memory, storage, peripherals and interfaces directly under properties",
};

function readList<T>(
  r: Reader,
  obj: JsonObject,
  key: string,
  at: string,
  item: (v: JsonValue, at: string) => T | undefined,
) {
  const items = r.array(obj, key, at);
  if (items === undefined) return { list: [] as T[], ok: !Object.hasOwn(obj, key) };
  const list: T[] = [];
  let ok = true;
  items.forEach((v, i) => {
    const x = item(v, at + pointer(key, i));
    if (x === undefined) ok = false;
    else list.push(x);
  });
  return { list, ok };
}

function readProperties(r: Reader, v: JsonValue, at: string): DeviceProperties | undefined {
  const obj = r.object(v, at, "properties");
  if (!obj) return undefined;
  r.members(obj, at, { known: PROPERTY_NAMES, closed: false, legacy: LEGACY_PROPERTIES });
  const id = r.string(obj, "id", at, { required: true, pattern: DEVICE_ID });
  const vendor = r.string(obj, "vendor", at, { required: true });
  const modelNumber = r.string(obj, "modelNumber", at, { required: true });
  const serialNumber = r.string(obj, "serialNumber", at, { required: true });
  const cpus = readList<DeviceCpu>(r, obj, "cpus", at, (item, here) => {
    const c = r.object(item, here, "cpu");
    if (!c) return undefined;
    r.members(c, here, { known: ["cores", "architecture"], closed: false });
    const cores = r.number(c, "cores", here, true);
    const architecture = Object.hasOwn(c, "architecture")
      ? r.enumValue(c, "architecture", here, DEVICE_ARCHITECTURES)
      : CpuArchitecture.CPU_ARCHITECTURE_UNSPECIFIED;
    return cores === undefined || architecture === undefined ? undefined : { cores, architecture };
  });
  const memory = r.string(obj, "memory", at);
  const storage = r.string(obj, "storage", at);
  const peripherals = readList<DevicePeripheral>(r, obj, "peripherals", at, (item, here) => {
    const p = r.object(item, here, "peripheral");
    if (!p) return undefined;
    r.members(p, here, { known: ["type", "manufacturer", "model"], closed: false });
    const type = r.enumValue(p, "type", here, PERIPHERAL_TYPES, true);
    const manufacturer = r.string(p, "manufacturer", here);
    const model = r.string(p, "model", here);
    if (type === undefined) return undefined;
    return {
      type,
      ...(manufacturer !== undefined ? { manufacturer } : {}),
      ...(model !== undefined ? { model } : {}),
    };
  });
  const interfaces = readList<DeviceCommunicationInterface>(
    r,
    obj,
    "interfaces",
    at,
    (item, here) => {
      const i = r.object(item, here, "interface");
      if (!i) return undefined;
      r.members(i, here, { known: ["type"], closed: false });
      const type = r.enumValue(i, "type", here, INTERFACE_TYPES, true);
      return type === undefined ? undefined : { type };
    },
  );
  const otelCollector = r.boolean(obj, "otelCollector", at);
  const runtimes = readList<string>(r, obj, "supportedRuntimes", at, (item, here) => {
    if (typeof item === "string" && (SUPPORTED_RUNTIMES as readonly string[]).includes(item))
      return item;
    r.error(
      typeof item === "string" ? "wire.enum" : "wire.type",
      here,
      `${JSON.stringify(item)} is not one of ${SUPPORTED_RUNTIMES.join(", ")}`,
    );
    return undefined;
  });
  const types = readList<string>(r, obj, "supportedDeploymentTypes", at, (item, here) => {
    if (typeof item !== "string") {
      r.error("wire.type", here, `must be a string, got ${kindOf(item)}`);
      return undefined;
    }
    if ((SUPPORTED_DEPLOYMENT_TYPES as readonly string[]).includes(item)) return item;
    // Checklist 34: the WFM maps unknown deployment types to custom instead of rejecting them.
    r.warn(
      "wire.enum",
      here,
      `${JSON.stringify(item)} is not helm, compose or custom; read as "custom"`,
    );
    return "custom";
  });
  for (const key of ["supportedRuntimes", "supportedDeploymentTypes"]) {
    const list = obj[key];
    if (Array.isArray(list) && list.length === 0) {
      r.error("wire.min-items", at + pointer(key), `"${key}" needs at least 1 item when present`);
    }
  }
  const lists = [cpus, peripherals, interfaces, runtimes, types];
  if (
    id === undefined ||
    vendor === undefined ||
    modelNumber === undefined ||
    serialNumber === undefined ||
    lists.some((l) => !l.ok)
  ) {
    return undefined;
  }
  return {
    id,
    vendor,
    modelNumber,
    serialNumber,
    cpus: cpus.list,
    ...(memory !== undefined ? { memory } : {}),
    ...(storage !== undefined ? { storage } : {}),
    peripherals: peripherals.list,
    interfaces: interfaces.list,
    ...(otelCollector !== undefined ? { otelCollector } : {}),
    supportedRuntimes: runtimes.list,
    supportedDeploymentTypes: types.list,
  };
}

/**
 * labelValueProblem applies the OpenAPI rule for label values: a string, number, boolean, or an
 * array of all strings or all numbers (mixed arrays match neither array branch).
 *
 * Decision on the empty array: it is ACCEPTED. The labels description says values "MUST be a
 * string, number, boolean, or an array of strings or numbers", and [] is both. Only the schema's
 * oneOf rejects it, because [] matches both array branches and oneOf demands exactly one: an
 * authoring artifact (anyOf was evidently meant), not a requirement. Since a peer validating
 * with the verbatim schema would still refuse it, the decoder reports wire.label-empty-array as
 * a warning so the sender learns of that risk, and the encoder writes it.
 */
function labelValueProblem(v: JsonValue): string | undefined {
  if (
    typeof v === "string" ||
    typeof v === "boolean" ||
    typeof v === "number" ||
    typeof v === "bigint"
  ) {
    return undefined;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    if (v.every((x) => typeof x === "string")) return undefined;
    if (v.every((x) => typeof x === "number" || typeof x === "bigint")) return undefined;
    return "an array must hold only strings or only numbers";
  }
  return `${kindOf(v)} is not a string, number, boolean or array`;
}

function readLabels(r: Reader, obj: JsonObject): Record<string, JsonValue> | undefined {
  if (!Object.hasOwn(obj, "labels")) return {};
  const labels = r.object(obj.labels, pointer("labels"), "labels");
  if (!labels) return undefined;
  const out: Record<string, JsonValue> = {};
  let ok = true;
  for (const [k, v] of Object.entries(labels)) {
    if (Array.isArray(v) && v.length === 0) {
      r.warn(
        "wire.label-empty-array",
        pointer("labels", k),
        "empty array: valid by the labels description, but the schema's oneOf matches it twice, so strict JSON Schema peers may refuse it",
      );
    }
    const why = labelValueProblem(v);
    if (why) {
      r.error("wire.label-value", pointer("labels", k), why);
      ok = false;
    } else setOwn(out, k, copyJson(v));
  }
  return ok ? out : undefined;
}

/** readDeviceCapabilities maps a parsed DeviceCapabilitiesManifest, reporting every problem. */
export function readDeviceCapabilities(
  tree: JsonValue,
  r: Reader,
): DeviceCapabilitiesManifest | undefined {
  const obj = r.object(tree, "", "device capabilities");
  if (!obj) return undefined;
  const extensions = r.members(obj, "", {
    known: ["properties", "labels"],
    closed: true,
    extensions: true,
    legacy: { apiVersion: "rc.3 bodies carry no apiVersion", kind: "rc.3 bodies carry no kind" },
  });
  const pv = r.present(obj, "properties", "", true);
  const properties = pv === undefined ? undefined : readProperties(r, pv, pointer("properties"));
  const labels = readLabels(r, obj);
  if (!properties || !labels) return undefined;
  return { properties, labels, extensions };
}

function writeDeviceCapabilities(m: DeviceCapabilitiesManifest): JsonValue {
  const p = m.properties;
  const out: Record<string, unknown> = {
    properties: p
      ? {
          id: p.id,
          vendor: p.vendor,
          modelNumber: p.modelNumber,
          serialNumber: p.serialNumber,
          // Repeated fields cannot tell absent from empty: an empty list is left out, which is
          // what a non-hosting gateway must send (checklist 31).
          cpus: p.cpus.length
            ? p.cpus.map((c) => ({
                cores: c.cores,
                architecture: DEVICE_ARCHITECTURES.toWire(c.architecture),
              }))
            : undefined,
          memory: p.memory,
          storage: p.storage,
          peripherals: p.peripherals.length
            ? p.peripherals.map((x) => ({
                type: PERIPHERAL_TYPES.toWire(x.type),
                manufacturer: x.manufacturer,
                model: x.model,
              }))
            : undefined,
          interfaces: p.interfaces.length
            ? p.interfaces.map((x) => ({ type: INTERFACE_TYPES.toWire(x.type) }))
            : undefined,
          otelCollector: p.otelCollector,
          supportedRuntimes: p.supportedRuntimes.length ? p.supportedRuntimes : undefined,
          supportedDeploymentTypes: p.supportedDeploymentTypes.length
            ? p.supportedDeploymentTypes
            : undefined,
        }
      : undefined,
  };
  const labels = m.labels ?? {};
  if (Object.keys(labels).length > 0)
    out.labels = mustTree("device capabilities", labels, pointer("labels"));
  flattenExtensions(out, extensionTree("device capabilities", m.extensions, ""), "");
  return out as JsonValue;
}

/**
 * encodeDeviceCapabilities writes a `PUT /api/v1/capabilities/{deviceId}` body as canonical
 * JSON with the x-<name>-extensions members flattened into the root object.
 */
export function encodeDeviceCapabilities(value: DeviceCapabilitiesManifest): Uint8Array {
  return encodeJson("device capabilities", writeDeviceCapabilities(value), readDeviceCapabilities);
}

/**
 * decodeDeviceCapabilities reads a capabilities body; extension members are collected into
 * `extensions` (unknown ones kept), any other unknown root member is wire.unknown-member.
 */
export function decodeDeviceCapabilities(
  input: Uint8Array | string,
): Decoded<DeviceCapabilitiesManifest> {
  return decodeJson(input, readDeviceCapabilities);
}
