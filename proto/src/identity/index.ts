// SPIFFE identity for Margo (digest section 5): SPIFFE IDs and MIAF names, X.509-SVID minting and
// verification, SPIFFE bundles, and the credentials folder layout. Shared by the reference WFM,
// the device agent and the conformance suite so that all three apply exactly the same rules.
export * from "./atomic-file.js";
export * from "./bundle.js";
export * from "./credentials-dir.js";
export * from "./der-certificate.js";
export * from "./spiffe-id.js";
export * from "./verify.js";
export * from "./x509.js";
