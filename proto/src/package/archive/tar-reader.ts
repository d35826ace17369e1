import { type Problem, problem } from "../../problem.js";
import { GunzipFailure, GunzipSource } from "./gunzip-source.js";
import {
  type ArchiveLimits,
  MAX_META_BYTES,
  MAX_META_RUN,
  MAX_TRAILING_BYTES,
  type ResolvedLimits,
  resolveLimits,
} from "./limits.js";
import {
  BLOCK,
  checksumOf,
  FIELD,
  GNU_EXT_IS_EXTENDED,
  isZeroBlock,
  PaxParseError,
  paddingFor,
  parsePaxRecords,
  readNumber,
  readString,
  TYPEFLAG,
} from "./tar-format.js";

/** Kinds of entries; everything beyond the first four is reported as archive.special-file. */
export type TarEntryType =
  | "file"
  | "dir"
  | "symlink"
  | "hardlink"
  | "fifo"
  | "chardev"
  | "blockdev"
  | "sparse"
  | "unknown";

/**
 * TarEntry is one entry as the archive states it: path and link target are NOT normalised, so
 * validators see exactly what an extractor would be told to do.
 */
export interface TarEntry {
  /** Path after applying pax `path` / GNU long names, verbatim. */
  path: string;
  type: TarEntryType;
  /** The raw typeflag character, for messages about unknown types. */
  typeflag: string;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  /** Content size; for sparse entries the real (expanded) size. */
  size: number;
  linkTarget?: string;
  /** Content of regular files (other types carry none). */
  content?: Uint8Array;
}

/** archivePointer is how archive problems point at an entry: "archive:<path as recorded>". */
export function archivePointer(path: string): string {
  return `archive:${path}`;
}

/** StopReading ends the scan after a fatal problem; the problem is already recorded. */
class StopReading extends Error {}

const TYPE_BY_FLAG: Record<string, TarEntryType> = {
  [TYPEFLAG.file]: "file",
  [TYPEFLAG.fileOld]: "file",
  [TYPEFLAG.contiguous]: "file",
  [TYPEFLAG.hardlink]: "hardlink",
  [TYPEFLAG.symlink]: "symlink",
  [TYPEFLAG.chardev]: "chardev",
  [TYPEFLAG.blockdev]: "blockdev",
  [TYPEFLAG.dir]: "dir",
  [TYPEFLAG.fifo]: "fifo",
  [TYPEFLAG.gnuSparse]: "sparse",
};

/** TarScanner holds the state of one pass; readTarGz is its only user. */
class TarScanner {
  readonly entries: TarEntry[] = [];
  readonly problems: Problem[] = [];
  private unpacked = 0;
  private globalPax = new Map<string, string>();

  constructor(
    private readonly src: GunzipSource,
    private readonly limits: ResolvedLimits,
  ) {}

  private fatal(rule: string, where: string, message: string): never {
    this.problems.push(problem(rule, where, message));
    throw new StopReading(message);
  }

  private async mustRead(n: number, where: string, what: string): Promise<Uint8Array> {
    const bytes = await this.src.read(n);
    if (!bytes) this.fatal("archive.corrupt", where, `archive is truncated inside ${what}`);
    return bytes;
  }

  private async mustSkip(n: number, where: string, what: string): Promise<void> {
    if (!(await this.src.skip(n))) {
      this.fatal("archive.corrupt", where, `archive is truncated inside ${what}`);
    }
  }

  async scan(): Promise<void> {
    let localPax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    let metaRun = 0;
    for (;;) {
      const offset = this.src.consumed;
      const at = `archive:@${offset}`;
      const block = await this.src.read(BLOCK);
      if (!block) {
        const rest = this.src.remaining();
        this.fatal(
          "archive.corrupt",
          at,
          rest > 0
            ? `archive ends inside a header (${rest} of 512 bytes)`
            : "archive ends without the end-of-archive marker (two zero blocks)",
        );
      }
      if (isZeroBlock(block)) {
        await this.finish(at);
        return;
      }
      const header = this.parseHeader(block, at);
      const typeflag = header.typeflag;

      if (
        typeflag === TYPEFLAG.paxLocal ||
        typeflag === TYPEFLAG.paxGlobal ||
        typeflag === TYPEFLAG.gnuLongName ||
        typeflag === TYPEFLAG.gnuLongLink
      ) {
        if (++metaRun > MAX_META_RUN) {
          this.fatal("archive.corrupt", at, `more than ${MAX_META_RUN} meta records in a row`);
        }
        if (header.size > MAX_META_BYTES) {
          this.fatal(
            "archive.size-limit",
            at,
            `meta record of ${header.size} bytes exceeds ${MAX_META_BYTES}`,
          );
        }
        const body = await this.mustRead(header.size, at, "a meta record");
        await this.mustSkip(paddingFor(header.size), at, "a meta record");
        if (typeflag === TYPEFLAG.gnuLongName || typeflag === TYPEFLAG.gnuLongLink) {
          const nul = body.indexOf(0);
          const text = new TextDecoder().decode(nul === -1 ? body : body.subarray(0, nul));
          if (typeflag === TYPEFLAG.gnuLongName) longName = text;
          else longLink = text;
        } else {
          let records: Map<string, string>;
          try {
            records = parsePaxRecords(body);
          } catch (err) {
            if (err instanceof PaxParseError) this.fatal("archive.corrupt", at, err.message);
            throw err;
          }
          if (typeflag === TYPEFLAG.paxGlobal) {
            for (const [k, v] of records) this.globalPax.set(k, v);
          } else {
            for (const [k, v] of records) localPax.set(k, v);
          }
        }
        continue;
      }

      metaRun = 0;
      const pax = new Map([...this.globalPax, ...localPax]);
      localPax = new Map();
      const ustarPath = header.prefix ? `${header.prefix}/${header.name}` : header.name;
      // GNU sparse 1.0 keeps the real name in GNU.sparse.name and a made-up one in path.
      const path = pax.get("GNU.sparse.name") ?? pax.get("path") ?? longName ?? ustarPath;
      const linkTarget = pax.get("linkpath") ?? longLink ?? header.linkname;
      longName = undefined;
      longLink = undefined;
      await this.entry(header, path, linkTarget, pax, at);
    }
  }

  private parseHeader(block: Uint8Array, at: string) {
    const stored = readNumber(block, FIELD.checksum);
    const sum = checksumOf(block);
    if (stored === undefined || (stored !== sum.unsigned && stored !== sum.signed)) {
      this.fatal("archive.corrupt", at, "tar header checksum does not match");
    }
    const size = readNumber(block, FIELD.size);
    const mode = readNumber(block, FIELD.mode);
    if (size === undefined || mode === undefined) {
      this.fatal("archive.corrupt", at, "tar header has a non-numeric size or mode");
    }
    const magic = readString(block, FIELD.magic);
    const version = readString(block, FIELD.version);
    const gnu = magic === "ustar " && version === " ";
    return {
      name: readString(block, FIELD.name),
      // GNU headers use the prefix area for times and sparse data, so only ustar has a prefix.
      prefix: magic === "ustar" ? readString(block, FIELD.prefix) : "",
      linkname: readString(block, FIELD.linkname),
      typeflag: String.fromCharCode(block[FIELD.typeflag[0]] ?? 0),
      size,
      mode,
      gnu,
      block,
    };
  }

  private async entry(
    header: ReturnType<TarScanner["parseHeader"]>,
    path: string,
    linkTarget: string,
    pax: Map<string, string>,
    at: string,
  ): Promise<void> {
    const where = path === "" ? at : archivePointer(path);
    if (this.entries.length >= this.limits.maxEntries) {
      this.fatal(
        "archive.entry-limit",
        where,
        `archive has more than ${this.limits.maxEntries} entries; reading stopped`,
      );
    }
    let stored = header.size;
    const paxSize = pax.get("size");
    if (paxSize !== undefined) {
      if (!/^[0-9]+$/.test(paxSize)) this.fatal("archive.corrupt", where, "bad pax size record");
      stored = Number(paxSize);
    }
    let type: TarEntryType = TYPE_BY_FLAG[header.typeflag] ?? "unknown";
    let size = stored;
    // pax-format GNU sparse files (0.x / 1.0) look like regular files; their real size is in pax.
    const paxReal = pax.get("GNU.sparse.realsize") ?? pax.get("GNU.sparse.size");
    if (paxReal !== undefined || pax.has("GNU.sparse.major") || pax.has("GNU.sparse.map")) {
      type = "sparse";
      size = paxReal !== undefined && /^[0-9]+$/.test(paxReal) ? Number(paxReal) : stored;
    }
    if (header.typeflag === TYPEFLAG.gnuSparse) {
      size = readNumber(header.block, FIELD.gnuRealSize) ?? Number.POSITIVE_INFINITY;
      // Extension blocks with further sparse map entries sit between header and data.
      let extended = (header.block[FIELD.gnuIsExtended[0]] ?? 0) !== 0;
      while (extended) {
        const ext = await this.mustRead(BLOCK, where, "a GNU sparse map");
        extended = (ext[GNU_EXT_IS_EXTENDED] ?? 0) !== 0;
      }
    }

    const pathBytes = Buffer.byteLength(path);
    const linkBytes = Buffer.byteLength(linkTarget);
    if (path === "")
      this.problems.push(problem("archive.corrupt", where, "entry has an empty path"));
    if (pathBytes > this.limits.maxPathLength || linkBytes > this.limits.maxPathLength) {
      this.problems.push(
        problem(
          "archive.path-length",
          where,
          `path or link target longer than ${this.limits.maxPathLength} bytes`,
        ),
      );
    }

    // Refuse by the declared size before inflating anything: this is what makes a 1 GiB entry
    // (or a sparse file whose holes would expand to 1 GiB) cost nothing to reject.
    const counted = type === "file" || type === "sparse" ? Math.max(size, stored) : stored;
    if (counted > this.limits.maxEntryBytes) {
      this.fatal(
        "archive.size-limit",
        where,
        `entry of ${counted} bytes exceeds the ${this.limits.maxEntryBytes}-byte entry limit`,
      );
    }
    if (this.unpacked + counted > this.limits.maxUnpackedBytes) {
      this.fatal(
        "archive.size-limit",
        where,
        `unpacked content would exceed ${this.limits.maxUnpackedBytes} bytes; reading stopped`,
      );
    }
    this.unpacked += counted;

    const entry: TarEntry = {
      path,
      type,
      typeflag: header.typeflag,
      mode: header.mode & 0o7777,
      size,
    };
    if (type === "symlink" || type === "hardlink") entry.linkTarget = linkTarget;
    if (type === "file") {
      entry.content = await this.mustRead(stored, where, "file content");
    } else {
      await this.mustSkip(stored, where, "entry data");
    }
    await this.mustSkip(paddingFor(stored), where, "entry padding");
    if (type !== "file" && type !== "dir" && type !== "symlink" && type !== "hardlink") {
      const what =
        type === "unknown" ? `unknown typeflag ${JSON.stringify(header.typeflag)}` : `type ${type}`;
      this.problems.push(
        problem(
          "archive.special-file",
          where,
          `entry has ${what}; only regular files, directories, symlinks and hard links are allowed`,
        ),
      );
    }
    this.entries.push(entry);
  }

  /** finish checks the second end marker block and drains what follows to verify gzip. */
  private async finish(at: string): Promise<void> {
    const second = await this.src.read(BLOCK);
    if (second && !isZeroBlock(second)) {
      this.fatal("archive.corrupt", at, "a lone zero block is followed by more data");
    }
    const rest = await this.src.drain(MAX_TRAILING_BYTES);
    if (rest.overLimit) {
      this.fatal(
        "archive.size-limit",
        at,
        `more than ${MAX_TRAILING_BYTES} bytes follow the end-of-archive marker`,
      );
    }
    if (rest.nonZero) {
      this.fatal("archive.corrupt", at, "non-zero data follows the end-of-archive marker");
    }
  }
}

/**
 * readTarGz reads a gzip'd tar with our own parser so that nothing is silently sanitised (node-tar
 * strips "..", absolute roots and more, which would hide exactly what we must report). It streams,
 * counts entries and bytes as it goes and stops at the first limit breach or corruption; other
 * problems (special files, over-long paths) are collected and reading continues.
 */
export async function readTarGz(
  bytes: Uint8Array | AsyncIterable<Uint8Array>,
  opts?: ArchiveLimits,
): Promise<{ entries: TarEntry[]; problems: Problem[] }> {
  const src = new GunzipSource(bytes);
  const scanner = new TarScanner(src, resolveLimits(opts));
  try {
    await scanner.scan();
  } catch (err) {
    if (err instanceof GunzipFailure) {
      scanner.problems.push(problem("archive.corrupt", "archive:", err.message));
    } else if (!(err instanceof StopReading)) {
      throw err;
    }
  } finally {
    src.close();
  }
  return { entries: scanner.entries, problems: scanner.problems };
}
