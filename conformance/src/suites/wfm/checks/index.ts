/**
 * Every WFM check, in run order: connection-level families first (they leave no state behind),
 * then the families that drive desired state through the driver.
 */
import type { Check } from "../../../core/types.js";
import type { WfmCtx } from "../context.js";
import { artifactChecks } from "./artifacts.js";
import { capabilityChecks } from "./capabilities.js";
import { deploymentChecks } from "./deployment-content.js";
import { manifestChecks } from "./manifest.js";
import { statusChecks } from "./status.js";

export const wfmChecks: readonly Check<WfmCtx>[] = [
  ...capabilityChecks,
  ...manifestChecks,
  ...artifactChecks,
  ...deploymentChecks,
  ...statusChecks,
];
