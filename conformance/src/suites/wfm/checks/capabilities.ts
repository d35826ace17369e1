/**
 * WFM suite checks (skeleton; filled in by H4). Exported so H3 can wire them into checks/index.ts.
 */
import type { Check } from "../../../core/types.js";
import type { WfmCtx } from "../context.js";

export const capabilityChecks: Check<WfmCtx>[] = [];
