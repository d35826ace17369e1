/**
 * Child process for the store crash test: commits desired-state changes, device and status writes
 * in an endless loop against the SQLite file named by argv[2], and prints one JSON line per write
 * only after its promise resolved (an acknowledgement). The test kill -9s this process at random
 * moments and then checks that every acknowledged write survived. stdout is a pipe, which Node
 * writes synchronously on Linux, so a printed line is never lost with the process.
 *
 * Each commit adds exactly one deployment stamped with the commit's version, so the set of all
 * deployments (tombstones included) spells the version sequence and exposes any gap.
 */
import { createHash, randomUUID } from "node:crypto";
import { openSqliteStore } from "../../src/store/sqlite-store.js";

/** What the writer prints; the crash test parses exactly these shapes. */
export type WriterAck =
  | { kind: "commit"; version: string; deploymentId: string; deleted: string[] }
  | { kind: "status"; deploymentId: string; body: string }
  | { kind: "device"; deviceId: string; body: string };

const CLIENT = "crash-client";
/** Live deployments kept; older ones are tombstoned so deletes are exercised too. */
const LIVE_LIMIT = 4;

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function ack(line: WriterAck): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new Error("usage: store-writer.ts <db path>");
  const store = await openSqliteStore(path);
  process.stdout.write('{"kind":"ready"}\n');
  for (;;) {
    const deploymentId = randomUUID();
    let deleted: string[] = [];
    const manifest = await store.commitDesiredState(CLIENT, ({ deployments, nextVersion }) => {
      const yaml = Buffer.from(`deploymentId: ${deploymentId}\nversion: ${nextVersion}\n`);
      const now = new Date();
      // By version, not the store's created_at order: two commits in one millisecond tie there.
      deleted = [...deployments]
        .sort((a, b) => (a.manifestVersion < b.manifestVersion ? -1 : 1))
        .slice(0, Math.max(0, deployments.length + 1 - LIVE_LIMIT))
        .map((d) => d.deploymentId);
      const body = Buffer.from(
        JSON.stringify({ manifestVersion: String(nextVersion), deploymentId }),
      );
      return {
        upserts: [
          {
            deploymentId,
            clientId: CLIENT,
            deviceId: "device-1",
            applicationId: "com.example.crash",
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
        deletes: deleted,
        manifest: {
          clientId: CLIENT,
          manifestVersion: nextVersion,
          body,
          etag: `"sha256:${sha256(body)}"`,
          bundle: { digest: `sha256:${sha256(yaml)}`, bytes: yaml },
        },
      };
    });
    const version = String(manifest.manifestVersion);
    ack({ kind: "commit", version, deploymentId, deleted });

    const status = JSON.stringify({ deploymentId, state: "installed", version });
    await store.putStatus({
      clientId: CLIENT,
      deploymentId,
      body: Buffer.from(status),
      receivedAt: new Date(),
    });
    ack({ kind: "status", deploymentId, body: status });

    const capabilities = JSON.stringify({ seen: version });
    await store.putDevice({
      clientId: CLIENT,
      deviceId: "device-1",
      capabilities: Buffer.from(capabilities),
      receivedAt: new Date(),
    });
    ack({ kind: "device", deviceId: "device-1", body: capabilities });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`store-writer: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
