// The reference WFM's identity: the file-backed trust domain authority behind WfmIdentity, plus
// the credentials-folder writer the CLI and tests use.
export {
  anchorsPem,
  FileIdentity,
  initIdentity,
  loadIdentity,
  writeCredentials,
} from "./authority.js";
export * from "./types.js";
