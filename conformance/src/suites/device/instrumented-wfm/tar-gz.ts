import { gzipSync } from "node:zlib";

/**
 * A minimal ustar + gzip writer. The instrumented WFM builds its bundles with it, and the
 * components module its deliberately unsafe archive: a normal packer refuses `../` entries, which
 * is exactly what the unsafe-archive check needs to send. Written here (not borrowed from the
 * reference WFM) so a packing bug there cannot hide behind the same bug here.
 */

const BLOCK = 512;

/** One archive member: a regular file (default) or a directory. */
export interface TarEntry {
  name: string;
  bytes?: Uint8Array;
  /** Default 0o644 for files, 0o755 for directories. */
  mode?: number;
  type?: "file" | "dir";
}

/** An entry name that does not fit a plain ustar header (a harness bug, not a device finding). */
export class TarNameError extends Error {
  override readonly name = "TarNameError";
}

function field(h: Buffer, offset: number, width: number, value: number): void {
  h.write(value.toString(8).padStart(width - 1, "0"), offset, width - 1, "ascii");
  h[offset + width - 1] = 0;
}

function header(e: TarEntry, size: number): Buffer {
  const name = Buffer.from(e.name, "utf8");
  if (name.length > 100) throw new TarNameError(`tar entry name longer than 100 bytes: ${e.name}`);
  const dir = e.type === "dir";
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0);
  field(h, 100, 8, e.mode ?? (dir ? 0o755 : 0o644));
  field(h, 108, 8, 0);
  field(h, 116, 8, 0);
  field(h, 124, 12, dir ? 0 : size);
  field(h, 136, 12, 0);
  h.fill(0x20, 148, 156);
  h[156] = dir ? 0x35 : 0x30;
  h.write("ustar\u000000", 257, 8, "binary");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "binary");
  return h;
}

/** Tar the entries in the order given (callers sort when they need determinism), then gzip. */
export function tarGz(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const bytes = e.type === "dir" ? new Uint8Array(0) : (e.bytes ?? new Uint8Array(0));
    parts.push(header(e, bytes.byteLength));
    if (bytes.byteLength > 0) {
      parts.push(Buffer.from(bytes));
      const pad = (BLOCK - (bytes.byteLength % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  const gz = gzipSync(Buffer.concat(parts));
  // OS byte "unknown": the same entries give the same bytes (and digest) on any host.
  gz[9] = 0xff;
  return gz;
}
