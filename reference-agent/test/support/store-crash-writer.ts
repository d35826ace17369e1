// Child process for store-crash.test.ts: writes state changes with their reports as fast as it
// can and prints one JSON line per write only after the store call returned (the acknowledgement
// the test holds the store to). Runs until killed.
import { SqliteAgentStore } from "../../src/state/sqlite-store.js";
import { record } from "./deployments.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: store-crash-writer <stateDir>");
const store = SqliteAgentStore.open(dir);

/** Deployments the writer cycles through; each write's number i is both in the record and the report. */
const CRASH_DEPLOYMENTS = ["d0", "d1", "d2"];

let i = 0;
for (const d of store.listDeployments()) i = Math.max(i, d.updatedAt);
process.stdout.write(`${JSON.stringify({ kind: "ready", from: i + 1 })}\n`);

const states = ["installing", "installed", "removing"] as const;
function step(): void {
  for (let n = 0; n < 20; n++) {
    i++;
    const id = CRASH_DEPLOYMENTS[i % CRASH_DEPLOYMENTS.length] as string;
    const rec = { ...record(id, states[i % states.length] ?? "installing"), updatedAt: i };
    const body = new TextEncoder().encode(JSON.stringify({ i, deploymentId: id }));
    const seq = store.saveDeployment(rec, body);
    process.stdout.write(`${JSON.stringify({ kind: "report", seq, i, deploymentId: id })}\n`);
    if (i % 10 === 0) {
      const head = store.outboxPending(1)[0];
      if (head) {
        store.outboxDelivered(head.seq);
        process.stdout.write(`${JSON.stringify({ kind: "delivered", seq: head.seq })}\n`);
      }
    }
  }
  // Yield so stdout drains; the kill can land anywhere, including mid-transaction.
  setImmediate(step);
}
step();
