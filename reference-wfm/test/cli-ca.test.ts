import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../src/cli/errors.js";
import { runCli } from "../src/cli/main.js";
import type { CliIo } from "../src/cli/output.js";
import { writeRunInfo } from "../src/cli/run-file.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

/**
 * `margo-wfm ca ...` against a whole WFM in this process (real identity, real admin gRPC edge over
 * mTLS): the rotation steps, their refusals as exit 1 with the reason, and an operator whose
 * bundle file still holds only the first anchor keeping access through activation.
 */

let wfm: TestWfm;

beforeAll(async () => {
  wfm = await startTestWfm({ grpc: true, config: { bundleRefreshHintSeconds: 3600 } });
  const op = await wfm.identity.mintOperator("admin");
  const dir = join(wfm.dataDir, "operator");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "svid.pem"), op.certificateChainPem);
  await writeFile(join(dir, "svid.key"), op.privateKeyPem);
  await writeFile(join(dir, "bundle.pem"), op.trustBundlePem);
  const addr = (port: number | undefined) => ({ host: "127.0.0.1", port: port ?? 0 });
  await writeRunInfo(wfm.dataDir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    management: addr(wfm.managementPort),
    trust: addr(wfm.trustPort),
    grpc: addr(wfm.grpcPort),
  });
});
afterAll(async () => {
  await wfm?.dispose();
});

async function cli(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = { out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
  const code = await runCli([...argv, "--data-dir", wfm.dataDir], io, {});
  return { code, out: stdout.join("\n"), err: stderr.join("\n") };
}

describe("margo-wfm ca", () => {
  it("digest 5.6: show, publish, activate (refused early, exit 1 naming when; --force), retire", async () => {
    const shown = await cli("ca", "show", "--json");
    expect(shown.code).toBe(EXIT.ok);
    const s0 = JSON.parse(shown.out);
    expect(s0.anchors).toHaveLength(1);
    expect(s0.anchors[0].role).toBe("TRUST_ANCHOR_ROLE_ISSUING");

    const activateFirst = await cli("ca", "activate");
    expect(activateFirst.code).toBe(EXIT.wfmFailure);
    expect(activateFirst.err).toContain("ca publish");

    const published = await cli("ca", "publish");
    expect(published.code).toBe(EXIT.ok);
    expect(published.out).toMatch(/spiffe_sequence 2\b/);
    expect(published.out).toMatch(/next\s+sha256:[0-9a-f]{64}/);
    expect(published.out).toMatch(/ca activate` allowed from \S+Z/);

    const again = await cli("ca", "publish");
    expect(again.code).toBe(EXIT.wfmFailure);
    expect(again.err).toContain("not active yet");

    const early = await cli("ca", "activate");
    expect(early.code).toBe(EXIT.wfmFailure);
    const allowedAt = published.out.match(/allowed from (\S+Z)/)?.[1];
    expect(early.err).toContain(`allowed from ${allowedAt}`);

    const forced = await cli("ca", "activate", "--force", "--json");
    expect(forced.code).toBe(EXIT.ok);
    const s1 = JSON.parse(forced.out);
    expect(s1.anchors.map((a: { role: string }) => a.role)).toEqual([
      "TRUST_ANCHOR_ROLE_ISSUING",
      "TRUST_ANCHOR_ROLE_PREVIOUS",
    ]);
    expect(s1.anchors[1].fingerprint).toBe(s0.anchors[0].fingerprint);

    // The operator's bundle file still holds only the first anchor, yet the CLI still verifies
    // the re-minted WFM SVID (through the cross-signed root) until the old anchor retires.
    const retired = await cli("ca", "retire", "--json");
    expect(retired.code).toBe(EXIT.ok);
    expect(JSON.parse(retired.out).anchorFingerprints).toEqual([s1.anchors[0].fingerprint]);
    expect(JSON.parse(retired.out).spiffeSequence).toBe("3");
  });
});
