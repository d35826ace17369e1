/**
 * Child-process entry for restart and kill -9 tests: `node --import tsx wfm-child.ts <dataDir>`.
 * Starts the WFM from the data dir's wfm.json (gRPC included) and prints one JSON line with the
 * ports, then serves until killed. SIGTERM closes gracefully.
 */
import { loadConfig } from "../../src/config.js";
import { startWfm } from "../../src/wfm.js";

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write("usage: wfm-child.ts <dataDir>\n");
  process.exit(2);
}
const config = await loadConfig(dataDir);
const wfm = await startWfm(config, { grpc: process.env.WFM_CHILD_GRPC !== "0" });
process.stdout.write(
  `${JSON.stringify({
    pid: process.pid,
    managementPort: wfm.managementPort,
    trustPort: wfm.trustPort,
    grpcPort: wfm.grpcPort ?? null,
  })}\n`,
);
process.once("SIGTERM", () => {
  void wfm.close().then(() => process.exit(0));
});
