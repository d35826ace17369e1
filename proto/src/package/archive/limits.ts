/**
 * ArchiveLimits bound what reading an untrusted archive may cost. They are checked while the
 * archive streams, so a gzip bomb or a 1 GiB entry is refused before it is inflated or buffered.
 */
export interface ArchiveLimits {
  /** Most entries (meta records such as pax headers excluded); default 10 000. */
  maxEntries?: number;
  /** Most bytes of entry content in total, hard-link copies included; default 256 MiB. */
  maxUnpackedBytes?: number;
  /** Most bytes of a single entry; default maxUnpackedBytes. */
  maxEntryBytes?: number;
  /** Longest entry path or link target in bytes; default 4096 (Linux PATH_MAX). */
  maxPathLength?: number;
}

/** ResolvedLimits has every limit filled in, so checks never deal with undefined. */
export type ResolvedLimits = Required<ArchiveLimits>;

export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_MAX_UNPACKED_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_PATH_LENGTH = 4096;

/** Largest pax or GNU long-name record we read; real ones are a few hundred bytes. */
export const MAX_META_BYTES = 1024 * 1024;
/** Most meta records (pax, long names) in a row before a real entry; 4 is the legitimate maximum. */
export const MAX_META_RUN = 16;
/** Bytes after the end-of-archive marker we drain to verify the gzip trailer (tar pads records). */
export const MAX_TRAILING_BYTES = 1024 * 1024;

/** resolveLimits applies the defaults; a caller's explicit value always wins. */
export function resolveLimits(opts: ArchiveLimits = {}): ResolvedLimits {
  const maxUnpackedBytes = opts.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES;
  return {
    maxEntries: opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
    maxUnpackedBytes,
    maxEntryBytes: opts.maxEntryBytes ?? maxUnpackedBytes,
    maxPathLength: opts.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH,
  };
}
