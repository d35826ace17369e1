/** The WFM's trust anchors, from a PEM file or a SPIFFE bundle JSON file (config trustBundleFile). */
import { readFile } from "node:fs/promises";
import { anchorsFromBundleJson, pemToDer } from "@margo/proto/identity";

/** The trust bundle file holds no usable anchor. */
export class TrustBundleFileError extends Error {
  override readonly name = "TrustBundleFileError";
}

export async function loadAnchors(file: string): Promise<Buffer[]> {
  const text = (await readFile(file, "utf8")).trim();
  const anchors = text.startsWith("{") ? anchorsFromBundleJson(text).anchors : pemToDer(text);
  if (anchors.length === 0) throw new TrustBundleFileError(`${file}: no certificate in it`);
  return anchors;
}
