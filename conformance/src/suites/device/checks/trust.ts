import type { Check } from "../../../core/types.js";
import type { DeviceCtx } from "../context.js";

export const trustChecks: readonly Check<DeviceCtx>[] = [];
