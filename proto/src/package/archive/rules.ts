/**
 * ArchiveRule documents one rule id the archive tooling can report, so reports and fixtures can
 * show what a rule means and where the spec asks for it without reading the code.
 */
export interface ArchiveRule {
  readonly id: string;
  readonly text: string;
  readonly source: string;
}

const SPEC = "Margo rc.3 Compose Archive (digest 3.3)";
const CHECK_74 = "Margo rc.3 Compose Archive security (digest 3.3, checklist 74)";
const SAFETY =
  "reader safety limit (this implementation; protects WFM and device before 74 applies)";

/** ARCHIVE_RULES lists every rule id of the archive and compose.yaml checks, one line each. */
export const ARCHIVE_RULES: readonly ArchiveRule[] = [
  {
    id: "archive.corrupt",
    text: "The file is not a well-formed gzip'd tar (bad gzip, bad header checksum, truncated, malformed pax/GNU record).",
    source: SPEC,
  },
  {
    id: "archive.entry-limit",
    text: "The archive has more entries than the reader allows; reading stopped there.",
    source: SAFETY,
  },
  {
    id: "archive.size-limit",
    text: "An entry, the total unpacked content (hard-link copies and sparse real sizes included), a meta record or the trailing data is larger than allowed; reading stopped there.",
    source: SAFETY,
  },
  {
    id: "archive.path-length",
    text: "An entry path or link target is longer than the reader allows.",
    source: SAFETY,
  },
  {
    id: "archive.special-file",
    text: "Only regular files, directories, symlinks and hard links are allowed (no FIFO, character or block device, GNU sparse or unknown type).",
    source: CHECK_74,
  },
  {
    id: "archive.single-top-dir",
    text: "The archive must hold exactly one top-level directory and nothing beside it.",
    source: SPEC,
  },
  {
    id: "archive.top-dir-name",
    text: "Warning: the top-level directory SHOULD be named like the component (consumers must not rely on it).",
    source: SPEC,
  },
  {
    id: "archive.compose-file-name",
    text: "The top-level directory must contain a regular file compose.yaml; compose.yml, docker-compose.yaml and docker-compose.yml are invalid.",
    source: SPEC,
  },
  {
    id: "archive.absolute-path",
    text: "Entry paths must be relative (no leading '/', '\\' or drive letter).",
    source: CHECK_74,
  },
  {
    id: "archive.path-traversal",
    text: "Entry paths must not contain a '..' segment (also after turning '\\' into '/' and dropping './').",
    source: CHECK_74,
  },
  {
    id: "archive.link-escape",
    text: "A symlink or hard link must resolve inside the top-level directory (absolute targets and chains through other links included).",
    source: CHECK_74,
  },
  {
    id: "archive.link-target-missing",
    text: "A hard link must name a regular file that appears earlier in the archive (it is extracted as a copy).",
    source: CHECK_74,
  },
  {
    id: "archive.path-through-link",
    text: "No entry may sit below a symlink entry: extracting it would write through the link.",
    source: CHECK_74,
  },
  {
    id: "archive.path-conflict",
    text: "Two entries have the same path, or an entry sits below a non-directory entry.",
    source: CHECK_74,
  },
  {
    id: "archive.mode-bits",
    text: "Warning: setuid/setgid/sticky bits are present and are dropped on extraction (modes become 0644/0755).",
    source: CHECK_74,
  },
  {
    id: "archive.target-not-empty",
    text: "Extraction refuses a target that exists and is not an empty real directory.",
    source: CHECK_74,
  },
  {
    id: "archive.extract-failed",
    text: "Extraction stopped on a filesystem error or a defence-in-depth check; everything written was removed.",
    source: CHECK_74,
  },
  {
    id: "compose.yaml-syntax",
    text: "compose.yaml must be UTF-8 YAML whose top level is a mapping.",
    source: SPEC,
  },
  {
    id: "compose.env-file-missing",
    text: "Every env_file must be a relative path to a file included in the archive (warning when the file is optional or the path uses interpolation).",
    source: SPEC,
  },
  {
    id: "compose.config-file-missing",
    text: "Every file-based top-level config must be a relative path to a file included in the archive.",
    source: SPEC,
  },
  {
    id: "compose.secret-file-included",
    text: "Files of file-based secrets must not be included in the archive.",
    source: SPEC,
  },
  {
    id: "compose.bind-source-included",
    text: "Sources of bind mounts (short './x:/y' or long type: bind) must not be included in the archive.",
    source: SPEC,
  },
];
