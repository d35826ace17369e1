export { ARCHITECTURES, OPERATORS, PATTERNS } from "./description-shape.js";
export { encodeDescription, encodeDescriptionDoc } from "./encode.js";
export { fromModel, toModel } from "./model.js";
export {
  checkParameterValue,
  DATA_TYPES,
  type DataType,
  type SchemaRule,
  type ValueFinding,
} from "./parameter-value.js";
export { type ParsedYaml, parseSingleYaml } from "./parse.js";
export { DESCRIPTION_RULES, type DescriptionRule, describeRule } from "./rules.js";
export type * from "./types.js";
export { type DescriptionResult, validateDescription } from "./validate.js";
