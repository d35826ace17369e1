/**
 * Store micro-benchmark (a script, not a test): how many durable desired-state commits and how
 * many manifest reads one SqliteStore sustains on this machine. Commits pay an fsync each
 * (synchronous=FULL), so their rate is bounded by the disk, not by the code; manifest reads are
 * what polling clients cost when the edge's cache misses.
 *
 *   npx tsx reference-wfm/bench/store.ts [clients=100] [commits=2000] [reads=200000]
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteStore } from "../src/store/sqlite-store.js";

const [clients = 100, commits = 2000, reads = 200_000] = process.argv
  .slice(2)
  .map((a) => Number.parseInt(a, 10));

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function rate(count: number, startNs: bigint): string {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  return `${Math.round(count / seconds).toLocaleString("en-US")}/s (${count} in ${seconds.toFixed(2)} s)`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wfm-bench-"));
  const store = await openSqliteStore(join(dir, "wfm.sqlite"));
  try {
    const ids = Array.from({ length: clients }, (_, i) => `client-${i}`);
    // A realistic manifest: a few KiB of body and a bundle of the same order.
    const payload = Buffer.alloc(4096, "x");

    let t = process.hrtime.bigint();
    for (let i = 0; i < commits; i++) {
      const clientId = ids[i % ids.length] as string;
      await store.commitDesiredState(clientId, ({ deployments, nextVersion }) => {
        const yaml = Buffer.from(`deployment ${randomUUID()} v${nextVersion}\n`);
        const body = Buffer.concat([Buffer.from(`{"v":${nextVersion}}`), payload]);
        const now = new Date();
        return {
          upserts: [
            {
              deploymentId: randomUUID(),
              clientId,
              deviceId: "device-1",
              applicationId: "com.example.bench",
              version: "1.0.0",
              profileId: "default",
              parametersJson: "{}",
              yaml,
              digest: `sha256:${sha256(yaml)}`,
              manifestVersion: nextVersion,
              createdAt: now,
              updatedAt: now,
            },
          ],
          // Keep each client at a steady few deployments, as a real fleet would be.
          deletes: deployments
            .slice(0, Math.max(0, deployments.length - 4))
            .map((d) => d.deploymentId),
          manifest: {
            clientId,
            manifestVersion: nextVersion,
            body,
            etag: `"sha256:${sha256(body)}"`,
            bundle: { digest: `sha256:${sha256(payload)}`, bytes: payload },
          },
        };
      });
    }
    console.log(`commitDesiredState (durable, fsync each): ${rate(commits, t)}`);

    t = process.hrtime.bigint();
    for (let i = 0; i < reads; i++) {
      const m = await store.getManifest(ids[i % ids.length] as string);
      if (!m) throw new Error("manifest missing");
    }
    console.log(`getManifest: ${rate(reads, t)}`);

    t = process.hrtime.bigint();
    const statusBody = Buffer.from('{"state":"installed"}');
    for (let i = 0; i < commits; i++) {
      await store.putStatus({
        clientId: ids[i % ids.length] as string,
        deploymentId: `dep-${i % 500}`,
        body: statusBody,
        receivedAt: new Date(),
      });
    }
    console.log(`putStatus (durable): ${rate(commits, t)}`);
    console.log(
      `clients=${clients} node=${process.version} rss=${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
