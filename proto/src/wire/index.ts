// Wire codecs: the spec's exact JSON/YAML <-> the generated protobuf types.
// Symbols below are for the WFM, the agent and the conformance suite.
export * from "./application-deployment.js";
export {
  type Decoded,
  decodeJson,
  decodeYamlWith,
  encodeJson,
  encodeYaml,
  type ReadFn,
} from "./codec.js";
export * from "./deployment-status.js";
export * from "./device-capabilities.js";
export { type EnumMap, enumMap } from "./enum-map.js";
export { canonicalJson, canonicalJsonBytes, WireEncodeError } from "./jcs.js";
export { type JsonObject, type JsonValue, MAX_DEPTH, parseJson } from "./json-value.js";
export * from "./problem-detail.js";
export * from "./profile-parts.js";
export {
  copyJson,
  EXTENSION_NAME,
  type Extensions,
  flattenExtensions,
  Reader,
  type Shape,
  UINT64_MAX,
} from "./reader.js";
export { WIRE_RULE_IDS, WIRE_RULES, type WireRule } from "./rules.js";
export * from "./state-manifest.js";
export * from "./trust-bundle.js";
export { decodeU64, encodeU64, U64_MAX, U64RangeError } from "./u64-text.js";
export { parseYaml, stringifyYaml } from "./yaml-text.js";
