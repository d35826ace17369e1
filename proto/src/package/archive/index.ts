/**
 * Compose Archive tooling: our own streaming tar reader (nothing silently sanitised), the
 * validator for every Margo archive rule, a confined extractor, deterministic packing and a tar
 * writer able to produce hostile archives for tests.
 */
export { resolveInside, type SplitPath, splitArchivePath } from "./archive-paths.js";
export {
  COMPOSE_FILE,
  INVALID_COMPOSE_NAMES,
  normalisedMode,
  validateComposeArchive,
} from "./compose-archive.js";
export { type ArchiveView, COMPOSE_POINTER_PREFIX, checkComposeYaml } from "./compose-checks.js";
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
export { archivePointer, readTarGz, type TarEntry, type TarEntryType } from "./tar-reader.js";
export { type TarEntrySpec, type WriteTarGzOptions, writeTarGz } from "./tar-writer.js";
