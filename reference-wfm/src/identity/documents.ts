import { createHash } from "node:crypto";
import { encodeAnchorsBundle } from "@margo/proto/identity";
import { encodeDiscoveryDocument } from "@margo/proto/wire";
import type { ServedDocument } from "./types.js";

/**
 * The two documents the trust endpoint serves, built once per change so each request only sends
 * bytes: their ETags are the quoted sha256 of exactly those bytes.
 */

function etagOf(body: Buffer): string {
  return `"sha256:${createHash("sha256").update(body).digest("hex")}"`;
}

/** GET /.well-known/margo: the trust domain and the bundle's URL under `trustPublicUrl`. */
export function discoveryFor(trustDomain: string, trustPublicUrl: string): ServedDocument {
  const base = trustPublicUrl.replace(/\/+$/, "");
  const body = Buffer.from(
    encodeDiscoveryDocument({
      trustDomain,
      trustBundleUri: `${base}/.well-known/spiffe/bundle.json`,
    }),
  );
  return { body, etag: etagOf(body) };
}

/** The SPIFFE bundle of `anchorsDer` (in bundle order) at `sequence`. */
export function bundleFor(
  anchorsDer: readonly Buffer[],
  sequence: bigint,
  refreshHintSeconds: number,
): ServedDocument {
  const body = encodeAnchorsBundle(anchorsDer, { sequence, refreshHintSeconds });
  return { body, etag: etagOf(body) };
}
