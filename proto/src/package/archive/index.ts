/**
 * Compose Archive tooling: our own streaming tar reader (nothing silently sanitised), the
 * validator for every Margo archive rule, a confined extractor, deterministic packing and a tar
 * writer able to produce hostile archives for tests.
 */

export { resolveInside, splitArchivePath } from "./archive-paths.js";
export {
  COMPOSE_FILE,
  INVALID_COMPOSE_NAMES,
  validateComposeArchive,
} from "./compose-archive.js";
export { COMPOSE_POINTER_PREFIX } from "./compose-checks.js";
export { ArchiveRejectedError } from "./errors.js";
export { extractComposeArchive } from "./extract.js";
export {
  type ArchiveLimits,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_PATH_LENGTH,
  DEFAULT_MAX_UNPACKED_BYTES,
} from "./limits.js";
export { packComposeArchive } from "./pack.js";
export { ARCHIVE_RULES, type ArchiveRule } from "./rules.js";

// Lower level: the raw tar reader and writer, for tools and for tests that craft archives.
export { archivePointer, readTarGz, type TarEntry, type TarEntryType } from "./tar-reader.js";
export { type TarEntrySpec, type WriteTarGzOptions, writeTarGz } from "./tar-writer.js";
