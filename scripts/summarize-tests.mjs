// Prints the test command's closing line from vitest's JSON report plus the static steps
// (format, lint, typecheck, generated-code check), each of which counts as one test.
// Exits non-zero when anything failed, or when vitest produced no report at all.
import { existsSync, readFileSync } from "node:fs";

const [file, staticPassed, staticFailed, seconds] = process.argv.slice(2);
let passed = Number(staticPassed);
let failed = Number(staticFailed);
let skipped = 0;
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A file that fails to load has no tests in it but must still fail the run.
  const brokenFiles = report.testResults.filter(
    (r) => r.status === "failed" && r.assertionResults.length === 0,
  ).length;
  failed += brokenFiles;
} else {
  console.log("vitest wrote no report");
  failed += 1;
}
console.log(`test command wall time: ${seconds}s`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
