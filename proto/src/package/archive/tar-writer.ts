import { createGzip, type Gzip } from "node:zlib";
import {
  BLOCK,
  concatBytes,
  encodePaxRecords,
  encodeUtf8,
  FIELD,
  paddingFor,
  TYPEFLAG,
  writeBytes,
  writeChecksum,
  writeNumber,
} from "./tar-format.js";

/**
 * TarEntrySpec describes one entry to write. It deliberately allows everything a hostile archive
 * could contain (absolute paths, "..", links anywhere, setuid modes, devices, huge sizes) because
 * the tests must be able to build every attack the reader and extractor defend against.
 */
export interface TarEntrySpec {
  /** Written verbatim: no normalisation, so "../x" and "/etc/x" stay what they are. */
  path: string;
  /** Default "file". "blockdev" and "gnu-sparse" exist for hostile-input tests. */
  type?: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "chardev" | "blockdev" | "gnu-sparse";
  content?: string | Uint8Array;
  /**
   * Zero-filled content of this size, streamed through gzip in fixed chunks and never allocated.
   * For "gnu-sparse" it is the real (expanded) size while no data is stored at all.
   */
  size?: number;
  /** Permission bits incl. setuid/setgid/sticky; default 0644 for files, 0755 for dirs, 0777 links. */
  mode?: number;
  /** Symlink target (relative to the link) or hard link target (an archive path). */
  linkTarget?: string;
  /** How names longer than ustar allows are carried; default pax. "gnu" writes L/K records. */
  longNames?: "pax" | "gnu";
}

/** Options of writeTarGz; level exists so tests streaming 1 GiB can trade ratio for speed. */
export interface WriteTarGzOptions {
  /** zlib level 0-9; default 9 (the level packComposeArchive pins for reproducible digests). */
  level?: number;
}

const TYPE_FLAGS: Record<NonNullable<TarEntrySpec["type"]>, string> = {
  file: TYPEFLAG.file,
  dir: TYPEFLAG.dir,
  symlink: TYPEFLAG.symlink,
  hardlink: TYPEFLAG.hardlink,
  fifo: TYPEFLAG.fifo,
  chardev: TYPEFLAG.chardev,
  blockdev: TYPEFLAG.blockdev,
  "gnu-sparse": TYPEFLAG.gnuSparse,
};

/** OS byte of the gzip header: 255 = "unknown", so the bytes do not depend on the packing host. */
const GZIP_OS_UNKNOWN = 0xff;
const ZERO_CHUNK = new Uint8Array(1 << 20);

/** Small writes are gathered up to this size: one gzip write per header costs far more. */
const BATCH_BYTES = 64 * 1024;

/** GzipSink pushes bytes into gzip honouring backpressure and collects the compressed output. */
class GzipSink {
  private readonly gzip: Gzip;
  private readonly out: Uint8Array[] = [];
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private failure: Error | undefined;

  constructor(level: number) {
    this.gzip = createGzip({ level });
    this.gzip.on("data", (chunk: Uint8Array) => this.out.push(chunk));
    this.gzip.on("error", (err: Error) => {
      this.failure = err;
    });
  }

  private async push(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (bytes.length === 0) return;
    if (!this.gzip.write(bytes)) {
      await new Promise<void>((resolve) => this.gzip.once("drain", resolve));
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const batch = concatBytes(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    await this.push(batch);
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length >= BATCH_BYTES) {
      await this.flush();
      await this.push(bytes);
      return;
    }
    // Copy: callers may reuse their buffer (ZERO_CHUNK slices) after we return.
    this.pending.push(bytes.slice());
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= BATCH_BYTES) await this.flush();
  }

  async zeros(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      const n = Math.min(left, ZERO_CHUNK.length);
      await this.write(n === ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, n));
      left -= n;
    }
  }

  async finish(): Promise<Uint8Array> {
    await this.flush();
    // Wait for "end" (all compressed output emitted), not the end() callback ("finish"),
    // which fires before the last chunks have been read.
    await new Promise<void>((resolve, reject) => {
      this.gzip.once("error", reject);
      this.gzip.once("end", resolve);
      this.gzip.end();
    });
    if (this.failure) throw this.failure;
    const bytes = concatBytes(this.out);
    if (bytes.length > 9) bytes[9] = GZIP_OS_UNKNOWN;
    return bytes;
  }
}

interface HeaderFields {
  name: Uint8Array;
  prefix?: Uint8Array;
  mode: number;
  size: number;
  typeflag: string;
  linkname?: Uint8Array;
  gnu?: boolean;
}

function header(f: HeaderFields): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeBytes(block, FIELD.name, f.name);
  writeNumber(block, FIELD.mode, f.mode);
  writeNumber(block, FIELD.uid, 0);
  writeNumber(block, FIELD.gid, 0);
  writeNumber(block, FIELD.size, f.size);
  writeNumber(block, FIELD.mtime, 0);
  block[FIELD.typeflag[0]] = f.typeflag.charCodeAt(0);
  if (f.linkname) writeBytes(block, FIELD.linkname, f.linkname);
  // GNU magic "ustar  \0" for GNU-only records; POSIX "ustar\0" + "00" otherwise.
  writeBytes(block, [257, 8], encodeUtf8(f.gnu ? "ustar  \0" : "ustar\u000000"));
  if (!f.gnu) {
    writeNumber(block, FIELD.devmajor, 0);
    writeNumber(block, FIELD.devminor, 0);
    if (f.prefix) writeBytes(block, FIELD.prefix, f.prefix);
  }
  return block;
}

/** splitUstarName fits a path into name(100) + prefix(155) split at a "/", if it can. */
function splitUstarName(path: Uint8Array): { name: Uint8Array; prefix?: Uint8Array } | undefined {
  if (path.length <= 100) return { name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== 0x2f) continue;
    const name = path.subarray(i + 1);
    const prefix = path.subarray(0, i);
    if (name.length === 0 || name.length > 100) return undefined;
    if (prefix.length <= 155) return { name, prefix };
  }
  return undefined;
}

async function writeEntry(sink: GzipSink, spec: TarEntrySpec, index: number): Promise<void> {
  const type = spec.type ?? "file";
  const typeflag = TYPE_FLAGS[type];
  const content =
    typeof spec.content === "string" ? encodeUtf8(spec.content) : (spec.content ?? undefined);
  // Only regular files carry data; a "gnu-sparse" entry is all hole, so it stores none.
  const dataSize = type === "file" ? (content?.length ?? spec.size ?? 0) : 0;
  const mode =
    spec.mode ??
    (type === "dir" ? 0o755 : type === "symlink" || type === "hardlink" ? 0o777 : 0o644);
  const pathBytes = encodeUtf8(spec.path);
  const linkBytes = encodeUtf8(spec.linkTarget ?? "");
  const split = splitUstarName(pathBytes);
  const linkFits = linkBytes.length <= 100;

  let name = split?.name ?? pathBytes.subarray(0, 100);
  let prefix = split?.prefix;
  if (!split || !linkFits) {
    if (spec.longNames === "gnu") {
      if (!split) {
        await writeMeta(sink, TYPEFLAG.gnuLongName, concatBytes([pathBytes, new Uint8Array(1)]));
        name = pathBytes.subarray(0, 100);
        prefix = undefined;
      }
      if (!linkFits) {
        await writeMeta(sink, TYPEFLAG.gnuLongLink, concatBytes([linkBytes, new Uint8Array(1)]));
      }
    } else {
      const records: Array<readonly [string, string]> = [];
      if (!split) records.push(["path", spec.path]);
      if (!linkFits) records.push(["linkpath", spec.linkTarget ?? ""]);
      await writeMeta(sink, TYPEFLAG.paxLocal, encodePaxRecords(records), `PaxHeaders/${index}`);
    }
  }

  const block = header({
    name,
    ...(prefix ? { prefix } : {}),
    mode,
    size: dataSize,
    typeflag,
    linkname: linkBytes.subarray(0, 100),
    gnu: type === "gnu-sparse",
  });
  if (type === "gnu-sparse") {
    // One sparse map entry (offset = real size, 0 bytes): the whole file is a hole.
    const real = spec.size ?? 0;
    writeNumber(block, [FIELD.gnuSparse[0], 12], real);
    writeNumber(block, [FIELD.gnuSparse[0] + 12, 12], 0);
    writeNumber(block, FIELD.gnuRealSize, real);
  }
  writeChecksum(block);
  await sink.write(block);
  if (type !== "file") return;
  if (content) await sink.write(content);
  else await sink.zeros(dataSize);
  await sink.zeros(paddingFor(dataSize));
}

async function writeMeta(
  sink: GzipSink,
  typeflag: string,
  body: Uint8Array,
  name = "././@LongLink",
): Promise<void> {
  const block = header({
    name: encodeUtf8(name).subarray(0, 100),
    mode: 0o644,
    size: body.length,
    typeflag,
    gnu: typeflag === TYPEFLAG.gnuLongName || typeflag === TYPEFLAG.gnuLongLink,
  });
  writeChecksum(block);
  await sink.write(block);
  await sink.write(body);
  await sink.zeros(paddingFor(body.length));
}

/**
 * writeTarGz serialises entries into a gzip'd tar exactly as given, with fixed metadata (mtime 0,
 * uid/gid 0, empty owner names, gzip header without name or time and a fixed OS byte), so equal
 * input always gives equal bytes. Zero-filled sizes are streamed, so a 1 GiB entry costs CPU only.
 */
export async function writeTarGz(
  entries: Iterable<TarEntrySpec> | AsyncIterable<TarEntrySpec>,
  opts: WriteTarGzOptions = {},
): Promise<Uint8Array> {
  const sink = new GzipSink(opts.level ?? 9);
  let index = 0;
  for await (const spec of entries) {
    await writeEntry(sink, spec, index++);
  }
  await sink.zeros(2 * BLOCK);
  return sink.finish();
}
