// The verifying half of the identity library, without the minting code: importing it does not
// load @peculiar/x509 or reflect-metadata (several MB of heap), so a long-running verifier such as
// the device agent stays small. Everything here is also exported by "./index.ts".
export * from "./atomic-file.js";
export * from "./bundle.js";
export * from "./credentials-dir.js";
export * from "./der-certificate.js";
export * from "./pem.js";
export * from "./spiffe-id.js";
export * from "./verify.js";
