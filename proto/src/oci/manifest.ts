import type { OCI_IMAGE_MANIFEST, OciDescriptor } from "./media-types.js";

/** OCI image manifest v1.1 as this project writes and reads it. */
export interface OciImageManifest {
  schemaVersion: 2;
  mediaType: typeof OCI_IMAGE_MANIFEST;
  artifactType?: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  subject?: OciDescriptor;
  annotations?: Record<string, string>;
}

/**
 * encodeManifest serialises a manifest once, with a fixed member order, and returns the bytes that
 * are pushed and digested; callers keep the bytes rather than re-encoding, so a digest is stable.
 */
export function encodeManifest(manifest: OciImageManifest): Uint8Array {
  const ordered: Record<string, unknown> = {
    schemaVersion: manifest.schemaVersion,
    mediaType: manifest.mediaType,
  };
  if (manifest.artifactType !== undefined) ordered.artifactType = manifest.artifactType;
  ordered.config = manifest.config;
  ordered.layers = manifest.layers;
  if (manifest.subject !== undefined) ordered.subject = manifest.subject;
  if (manifest.annotations !== undefined && Object.keys(manifest.annotations).length > 0) {
    ordered.annotations = manifest.annotations;
  }
  return new TextEncoder().encode(JSON.stringify(ordered));
}

/** isRecord narrows parsed JSON to an object so validators can read members without crashing. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** layersOf returns a parsed manifest's layers array, or none when the manifest has no such array. */
export function layersOf(manifest: unknown): unknown[] {
  return isRecord(manifest) && Array.isArray(manifest.layers) ? manifest.layers : [];
}

/** stringMap returns an annotations object's string members (anything else is ignored). */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === "string") out[k] = v;
  return out;
}
