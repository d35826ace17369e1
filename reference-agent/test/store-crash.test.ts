import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteAgentStore, STORE_FILE } from "../src/state/sqlite-store.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");
const writer = join(here, "support", "store-crash-writer.ts");
const ROUNDS = 5;

type Ack =
  | { kind: "ready"; from: number }
  | { kind: "report"; seq: number; i: number; deploymentId: string }
  | { kind: "delivered"; seq: number };

const dir = mkdtempSync(join(tmpdir(), "agent-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Start the writer, let it write for a random while after its first acknowledged report, then
 * SIGKILL it, so the kill lands at an arbitrary point (often inside a transaction or an fsync).
 * Only complete lines count as acknowledgements.
 */
function runAndKill(extraMs: number): Promise<Ack[]> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, dir], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let armed = false;
    const deadline = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`writer never acknowledged a report: ${err}`));
    }, 20_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (!armed && out.includes('"kind":"report"')) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), extraMs);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", fail);
    child.on("exit", (code, signal) => {
      clearTimeout(deadline);
      if (signal !== "SIGKILL") {
        fail(new Error(`writer exited by itself (code ${code}): ${err}`));
        return;
      }
      done(
        out
          .split("\n")
          .slice(0, -1)
          .map((l) => JSON.parse(l) as Ack),
      );
    });
  });
}

interface Row {
  seq: number;
  deployment_id: string;
  body: Buffer;
  state: string;
}

describe("SqliteAgentStore under kill -9", () => {
  it("item 65, issue 4 durable status: every acknowledged report survives, in order, never without its state", async () => {
    let durableBefore = 0;
    const ackedDelivered = new Set<number>();
    for (let round = 0; round < ROUNDS; round++) {
      const acks = await runAndKill(30 + Math.floor(Math.random() * 250));
      const ready = acks[0];
      expect(ready?.kind).toBe("ready");
      // The writer continues exactly after the last durable write of the previous round.
      expect(ready?.kind === "ready" && ready.from).toBe(durableBefore + 1);
      const reports = acks.filter((a) => a.kind === "report");
      expect(reports.length).toBeGreaterThan(0);
      for (const a of acks) if (a.kind === "delivered") ackedDelivered.add(a.seq);

      // Reopening runs recovery of the WAL exactly as a restarted agent would.
      SqliteAgentStore.open(dir).close();
      const db = new Database(join(dir, STORE_FILE), { readonly: true });
      let rows: Row[];
      let records: Array<{ deployment_id: string; updated_at: number; state: string }>;
      try {
        rows = db
          .prepare("SELECT seq, deployment_id, body, state FROM outbox ORDER BY seq")
          .all() as Row[];
        records = db
          .prepare("SELECT deployment_id, updated_at, state FROM deployments")
          .all() as typeof records;
      } finally {
        db.close();
      }
      const bySeq = new Map(rows.map((r) => [r.seq, r]));
      const numbers = rows.map((r) => (JSON.parse(r.body.toString()) as { i: number }).i);

      // Every acknowledged report is there, with its own body.
      for (const a of reports) {
        const row = bySeq.get(a.seq);
        expect(row?.deployment_id).toBe(a.deploymentId);
        expect(JSON.parse(row?.body.toString() ?? "{}")).toEqual({
          i: a.i,
          deploymentId: a.deploymentId,
        });
      }
      for (const seq of ackedDelivered) expect(bySeq.get(seq)?.state).toBe("delivered");

      // In order and without gaps: seq order is write order, writes 1..N each exactly once.
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, k) => k + 1));
      const last = reports.at(-1)?.i ?? 0;
      // At most the one write in flight at the kill became durable without its acknowledgement.
      expect(numbers.length === last || numbers.length === last + 1).toBe(true);

      // Record and outbox agree: each deployment's state is the one its newest report carries.
      for (const rec of records) {
        const newest = rows.filter((r) => r.deployment_id === rec.deployment_id).at(-1);
        expect(JSON.parse(newest?.body.toString() ?? "{}").i).toBe(rec.updated_at);
      }
      durableBefore = numbers.length;
    }
    expect(durableBefore).toBeGreaterThan(ROUNDS);
  }, 60_000);
});
