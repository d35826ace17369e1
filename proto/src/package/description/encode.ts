import { stringify } from "yaml";
import type { ApplicationDescription } from "../../gen/margo/model/v1/application_description.js";
import { fromModel } from "./model.js";
import type { ApplicationDescriptionDoc } from "./types.js";

/**
 * Writes a description as margo.yaml text, members in the spec's order, so tools that build a
 * package (fixtures, the conformance suite's generated apps) produce files a vendor recognises.
 * Never use it to re-serialise a received package: packages are content-addressed by their
 * exact bytes.
 */
export function encodeDescription(value: ApplicationDescription): string {
  return encodeDescriptionDoc(fromModel(value));
}

/** Writes the YAML-shaped document as is (extensions inline). */
export function encodeDescriptionDoc(doc: ApplicationDescriptionDoc): string {
  // lineWidth 0: never fold long strings, so a value reads back byte-identical.
  return stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}
