// The OCI layer: a distribution v1.1 client, the Margo package/component layouts and their rules.
// Symbols here are for every consumer (WFM, device agent, conformance suite, scripts).
export * from "./app-package.js";
export type { BlobSpec, PulledHead, PushedArtifact } from "./artifact.js";
export { pushArtifact } from "./artifact.js";
export * from "./client.js";
export * from "./compose-component.js";
export * from "./digest.js";
export * from "./errors.js";
export * from "./helm-chart.js";
export * from "./manifest.js";
export * from "./media-types.js";
export * from "./publish-package.js";
export * from "./reference.js";
export * from "./rules.js";
export * from "./validate.js";
