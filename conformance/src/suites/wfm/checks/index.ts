/**
 * Every WFM check, in run order: connection-level families first (they leave no state behind),
 * then the families that drive desired state through the driver.
 */
import type { Check } from "../../../core/types.js";
import type { WfmCtx } from "../context.js";
import { artifactChecks } from "./artifacts.js";
import { capabilityChecks } from "./capabilities.js";
import { deploymentChecks } from "./deployment-content.js";
import { errorChecks } from "./errors.js";
import { identityChecks } from "./identity.js";
import { isolationChecks } from "./isolation.js";
import { manifestChecks } from "./manifest.js";
import { packageChecks } from "./packages.js";
import { statusChecks } from "./status.js";
import { transportChecks } from "./transport.js";
import { trustChecks } from "./trust.js";

export const wfmChecks: readonly Check<WfmCtx>[] = [
  ...transportChecks,
  ...identityChecks,
  ...errorChecks,
  ...trustChecks,
  ...capabilityChecks,
  ...manifestChecks,
  ...artifactChecks,
  ...deploymentChecks,
  ...packageChecks,
  ...statusChecks,
  ...isolationChecks,
];
