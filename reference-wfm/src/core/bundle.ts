import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

/**
 * The deterministic bundle (digest 6.4, items 43-45): a gzip tar whose root holds exactly one
 * `<deploymentId>.yaml` per referenced deployment. It is built synchronously because the store
 * runs the desired-state change inside its transaction, and byte-for-byte reproducibly (sorted
 * names, fixed mtime/uid/gid/mode, no user names, gzip mtime 0 and OS byte 255) so the same
 * content always yields the same digest, on any host.
 */

const BLOCK = 512;
/** Regular files only, rw-r--r--: nothing executable or special ever goes to a device. */
const FILE_MODE = 0o644;

export interface BundleEntry {
  name: string;
  bytes: Uint8Array;
}

/** The entry name of one deployment's YAML inside the bundle. */
export function bundleEntryName(deploymentId: string): string {
  return `${deploymentId}.yaml`;
}

/** Writes `value` as a zero-padded octal field of `width` bytes (NUL-terminated). */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(value.toString(8).padStart(width - 1, "0"), offset, width - 1, "ascii");
  header[offset + width - 1] = 0;
}

function ustarHeader(name: string, size: number): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  // Deployment ids are UUIDs, so names are 41 bytes; longer ones would need pax records.
  if (nameBytes.length > 100) throw new Error(`bundle entry name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  nameBytes.copy(h, 0);
  octal(h, 100, 8, FILE_MODE);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0); // mtime: fixed, so the digest depends on content only
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = 0x30; // typeflag '0': regular file
  h.write("ustar\u000000", 257, 8, "binary");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "binary");
  return h;
}

/** Tar + gzip of the entries, sorted by name; throws on duplicate names (a caller bug). */
export function buildBundle(entries: readonly BundleEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: Buffer[] = [];
  let previous: string | undefined;
  for (const e of sorted) {
    if (e.name === previous) throw new Error(`duplicate bundle entry ${e.name}`);
    previous = e.name;
    parts.push(ustarHeader(e.name, e.bytes.byteLength), Buffer.from(e.bytes));
    const pad = (BLOCK - (e.bytes.byteLength % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  const gz = gzipSync(Buffer.concat(parts), { level: 9 });
  gz[9] = 0xff; // OS "unknown": the bytes must not depend on the packing host
  return gz;
}

/** `sha256:<hex>` of bytes: the one digest form rc.3 allows (digest 6.2). */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
