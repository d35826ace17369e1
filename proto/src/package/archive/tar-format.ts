/**
 * Byte layout of a 512-byte tar header (POSIX ustar, with the GNU and pax extensions we read).
 * Kept in one place so the reader and the writer can never disagree about an offset.
 */
export const BLOCK = 512;

/** Field offsets and lengths of a ustar header; GNU headers reuse the same first 345 bytes. */
export const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  checksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
  /** Old GNU sparse header: four (offset, numbytes) pairs, then the extension flag and real size. */
  gnuSparse: [386, 96],
  gnuIsExtended: [482, 1],
  gnuRealSize: [483, 12],
} as const satisfies Record<string, readonly [number, number]>;

/** In a GNU sparse extension block the continuation flag sits after 21 (offset, numbytes) pairs. */
export const GNU_EXT_IS_EXTENDED = 504;

/** Typeflags the reader understands; anything else is reported as a special file. */
export const TYPEFLAG = {
  file: "0",
  fileOld: "\0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  dir: "5",
  fifo: "6",
  contiguous: "7",
  paxLocal: "x",
  paxGlobal: "g",
  gnuLongName: "L",
  gnuLongLink: "K",
  gnuSparse: "S",
} as const;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");

/** encodeUtf8 is the one place strings become header bytes (names may be non-ASCII). */
export function encodeUtf8(s: string): Uint8Array {
  return utf8.encode(s);
}

/** readString reads a NUL-terminated field; tar fields need not contain the terminator. */
export function readString(block: Uint8Array, [off, len]: readonly [number, number]): string {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return utf8Decoder.decode(nul === -1 ? field : field.subarray(0, nul));
}

/**
 * readNumber parses an octal field, or the GNU base-256 form (high bit set) that large sizes use.
 * Returns undefined when the field is not a number at all: the header is then corrupt.
 * Values beyond 2^53 come back as Infinity so every limit check rejects them.
 */
export function readNumber(
  block: Uint8Array,
  [off, len]: readonly [number, number],
): number | undefined {
  const field = block.subarray(off, off + len);
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative base-256 values are never valid sizes or modes
    let value = first & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] ?? 0);
    }
    return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
  }
  let text = "";
  for (const b of field) {
    if (b === 0) break;
    text += String.fromCharCode(b);
  }
  text = text.trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  const value = Number.parseInt(text, 8);
  return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
}

/** checksumOf sums the header with the checksum field read as spaces (unsigned and signed forms). */
export function checksumOf(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  const [cOff, cLen] = FIELD.checksum;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= cOff && i < cOff + cLen ? 0x20 : (block[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

/** isZeroBlock detects the end-of-archive marker (two of these in a row). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (const b of block) if (b !== 0) return false;
  return true;
}

/** writeBytes copies raw bytes into a field, truncating; callers check lengths beforehand. */
export function writeBytes(
  block: Uint8Array,
  [off, len]: readonly [number, number],
  bytes: Uint8Array,
): void {
  block.set(bytes.subarray(0, len), off);
}

/**
 * writeNumber writes a zero-padded octal field with a trailing NUL, falling back to base-256 when
 * the value does not fit (sizes of 8 GiB and more), as GNU tar and node-tar also do.
 */
export function writeNumber(
  block: Uint8Array,
  [off, len]: readonly [number, number],
  value: number,
): void {
  const digits = len - 1;
  if (value >= 0 && value < 8 ** digits) {
    const text = value.toString(8).padStart(digits, "0");
    for (let i = 0; i < digits; i++) block[off + i] = text.charCodeAt(i);
    block[off + digits] = 0;
    return;
  }
  let rest = value;
  for (let i = len - 1; i >= 1; i--) {
    block[off + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  block[off] = 0x80;
}

/** writeChecksum fills the checksum field after every other field has been written. */
export function writeChecksum(block: Uint8Array): void {
  const [off] = FIELD.checksum;
  const { unsigned } = checksumOf(block);
  const text = unsigned.toString(8).padStart(6, "0");
  for (let i = 0; i < 6; i++) block[off + i] = text.charCodeAt(i);
  block[off + 6] = 0;
  block[off + 7] = 0x20;
}

/** paddingFor is how many zero bytes follow `size` data bytes to reach the next block. */
export function paddingFor(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/**
 * encodePaxRecords builds the body of a pax extended header. Each record carries its own decimal
 * length, which includes the digits of that length, hence the small fixed-point loop.
 */
export function encodePaxRecords(records: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of records) {
    const body = encodeUtf8(` ${key}=${value}\n`).length;
    let len = body + 1;
    while (String(len).length + body !== len) len = String(len).length + body;
    parts.push(encodeUtf8(`${len} ${key}=${value}\n`));
  }
  return concatBytes(parts);
}

/** PaxParseError says a pax header body is malformed; the reader turns it into archive.corrupt. */
export class PaxParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PaxParseError";
  }
}

/** parsePaxRecords reads "<len> key=value\n" records; later keys win, as POSIX specifies. */
export function parsePaxRecords(body: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad the body with NULs
    const space = body.indexOf(0x20, pos);
    if (space === -1) throw new PaxParseError("pax record without a length");
    const lenText = utf8Decoder.decode(body.subarray(pos, space));
    if (!/^[0-9]+$/.test(lenText)) throw new PaxParseError(`bad pax record length "${lenText}"`);
    const len = Number.parseInt(lenText, 10);
    if (len <= space - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw new PaxParseError("pax record length does not match its content");
    }
    const record = utf8Decoder.decode(body.subarray(space + 1, pos + len - 1));
    const eq = record.indexOf("=");
    if (eq <= 0) throw new PaxParseError("pax record without key=value");
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** concatBytes joins chunks into one array (Buffer.concat without tying callers to Buffer). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
