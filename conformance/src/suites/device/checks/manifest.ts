/** device.manifest checks (skeleton: filled in by H6). */
import type { Check } from "../../../core/types.js";
import type { DeviceCtx } from "../context.js";

export const manifestChecks: Check<DeviceCtx>[] = [];
