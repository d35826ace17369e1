// Prints the test command's closing line from vitest's JSON report plus the static steps
// (format, lint, typecheck, generated-code check), each of which counts as one test.
// A suite whose setup throws leaves its tests "skipped" in the report; that is an environment
// failure, not a skip, so every failed file without a failed test counts as one failure, and so
// does a vitest run that exited non-zero while the report shows no failure.
// Exits non-zero when anything failed, or when vitest produced no report at all.
import { existsSync, readFileSync } from "node:fs";

const [file, staticPassed, staticFailed, seconds, vitestExit = "0"] = process.argv.slice(2);
let passed = Number(staticPassed);
let failed = Number(staticFailed);
let skipped = 0;
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  for (const r of report.testResults) {
    const failedHere = r.assertionResults.filter((a) => a.status === "failed").length;
    if (r.status === "failed" && failedHere === 0) {
      console.log(`failed without a failing test (setup or import error): ${r.name}`);
      console.log(`  ${String(r.message ?? "").split("\n")[0]}`);
      failed += 1;
    }
  }
} else {
  console.log("vitest wrote no report");
  failed += 1;
}
if (vitestExit !== "0" && failed === Number(staticFailed)) {
  console.log(`vitest exited with ${vitestExit} although its report shows no failing test`);
  failed += 1;
}
console.log(`test command wall time: ${seconds}s`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
