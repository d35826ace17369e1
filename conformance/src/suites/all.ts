/**
 * Every suite the harness has. The runner, the CLI and the catalogue test read the checks from
 * here only, so a check cannot exist without the catalogue test seeing it.
 */
import { deviceSuite } from "./device/suite.js";
import { packageSuite } from "./package/suite.js";
import { wfmSuite } from "./wfm/suite.js";

export const SUITES = { wfm: wfmSuite, device: deviceSuite, package: packageSuite } as const;

export function allChecks() {
  return [...wfmSuite.checks, ...deviceSuite.checks, ...packageSuite.checks];
}
