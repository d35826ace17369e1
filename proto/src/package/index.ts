/**
 * Package tooling: the Application Description (margo.yaml), Helm chart checks, package
 * directories, and (from the archive helper) Compose Archives. One library so the WFM, the
 * agent and the conformance suite judge packages by the same rules.
 */
export * from "./archive/index.js";
export * from "./chart/index.js";
export * from "./description/index.js";
export * from "./package-dir.js";
