/**
 * Every device check, in run order. Families: transport, identity, trust (here) and capabilities,
 * manifest, reconcile, status, retry (their own files).
 */
import type { Check } from "../../../core/types.js";
import type { DeviceCtx } from "../context.js";
import { capabilityChecks } from "./capabilities.js";
import { identityChecks } from "./identity.js";
import { manifestChecks } from "./manifest.js";
import { reconcileChecks } from "./reconcile.js";
import { retryChecks } from "./retry.js";
import { statusChecks } from "./status.js";
import { transportChecks } from "./transport.js";
import { trustChecks } from "./trust.js";

export const deviceChecks: readonly Check<DeviceCtx>[] = [
  ...transportChecks,
  ...identityChecks,
  ...trustChecks,
  ...capabilityChecks,
  ...manifestChecks,
  ...reconcileChecks,
  ...statusChecks,
  ...retryChecks,
];
