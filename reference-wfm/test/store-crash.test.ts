import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openSqliteStore } from "../src/store/sqlite-store.js";
import type { WriterAck } from "./support/store-writer.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");
const writerScript = join(here, "support", "store-writer.ts");
const CLIENT = "crash-client";
const ROUNDS = 5;
/** Must match store-writer.ts. */
const LIVE_LIMIT = 4;

const dir = mkdtempSync(join(tmpdir(), "wfm-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Run the writer until it has acknowledged at least one commit, let it write for a random
 * while more, then kill -9 it, so the kill lands at an arbitrary point (often mid-transaction
 * or mid-fsync). Resolves with every line it acknowledged.
 */
function runAndKill(dbPath: string, extraMs: number): Promise<WriterAck[]> {
  return new Promise((resolvePromise, reject) => {
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", writerScript, dbPath], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let killTimer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`writer never acknowledged a commit: ${err}`));
    }, 20_000);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (killTimer === undefined && out.includes('"kind":"commit"')) {
        killTimer = setTimeout(() => child.kill("SIGKILL"), extraMs);
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(deadline);
      if (signal !== "SIGKILL") {
        reject(new Error(`writer exited by itself (code ${code}): ${err}`));
        return;
      }
      // A line cut by the kill is not an acknowledgement: only complete lines count.
      const lines = out.split("\n").slice(0, -1);
      resolvePromise(
        lines
          .map((l) => JSON.parse(l) as WriterAck | { kind: "ready" })
          .filter((a): a is WriterAck => a.kind !== "ready"),
      );
    });
  });
}

describe("SqliteStore durability under kill -9", () => {
  it("item 42, issue 3 persistence: every acknowledged write survives kill -9 and versions have no gaps or regressions", async () => {
    const dbPath = join(dir, "wfm.sqlite");
    let committedBefore = 0n;
    let totalAcked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const acks = await runAndKill(dbPath, 20 + Math.floor(Math.random() * 300));
      const commits = acks.filter((a) => a.kind === "commit");
      expect(commits.length).toBeGreaterThan(0);
      totalAcked += acks.length;

      // Acknowledged versions continue the durable sequence exactly: no gap, no reuse.
      commits.forEach((c, i) => {
        expect(BigInt(c.version)).toBe(committedBefore + BigInt(i) + 1n);
      });
      const lastAcked = BigInt(commits.at(-1)?.version ?? "0");

      const store = await openSqliteStore(dbPath);
      try {
        const manifest = await store.getManifest(CLIENT);
        const current = manifest?.manifestVersion ?? 0n;
        // At most one commit may have become durable without its acknowledgement being printed.
        expect(current === lastAcked || current === lastAcked + 1n).toBe(true);
        expect(JSON.parse(manifest?.body.toString() ?? "{}").manifestVersion).toBe(String(current));

        const all = await store.listDeployments({ clientId: CLIENT, includeDeleted: true });
        const versions = all.map((d) => d.manifestVersion).sort((a, b) => (a < b ? -1 : 1));
        expect(versions).toEqual(Array.from({ length: Number(current) }, (_, i) => BigInt(i + 1)));

        // The writer keeps the newest LIVE_LIMIT deployments live and tombstones the rest.
        const live = await store.listDeployments({ clientId: CLIENT });
        const firstLive = current > BigInt(LIVE_LIMIT) ? current - BigInt(LIVE_LIMIT) + 1n : 1n;
        // Sorted: deployments created in the same millisecond tie in the store's order.
        const liveVersions = live.map((d) => d.manifestVersion).sort((a, b) => (a < b ? -1 : 1));
        expect(liveVersions).toEqual(
          Array.from({ length: Number(current - firstLive + 1n) }, (_, i) => firstLive + BigInt(i)),
        );

        for (const c of commits) {
          const d = await store.getDeployment(c.deploymentId);
          expect(d?.manifestVersion).toBe(BigInt(c.version));
          expect(d?.yaml.toString()).toBe(
            `deploymentId: ${c.deploymentId}\nversion: ${c.version}\n`,
          );
          for (const id of c.deleted) {
            expect((await store.getDeployment(id))?.deletedAt).toBeInstanceOf(Date);
          }
        }
        const statuses = new Map(
          (await store.listStatuses({ clientId: CLIENT })).map((s) => [
            s.deploymentId,
            s.body.toString(),
          ]),
        );
        for (const s of acks.filter((a) => a.kind === "status")) {
          expect(statuses.get(s.deploymentId)).toBe(s.body);
        }
        const lastDevice = acks.filter((a) => a.kind === "device").at(-1);
        if (lastDevice) {
          const stored = await store.getDevice(CLIENT, lastDevice.deviceId);
          const seen = BigInt(JSON.parse(stored?.capabilities.toString() ?? "{}").seen ?? "0");
          expect(seen >= BigInt(JSON.parse(lastDevice.body).seen)).toBe(true);
        }
        committedBefore = current;
      } finally {
        await store.close();
      }
    }
    expect(totalAcked).toBeGreaterThan(ROUNDS);
  });
});
