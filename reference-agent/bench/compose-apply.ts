/**
 * Wall time of one Compose apply (a script, not a test): ComposeProvider.apply of compose-single's
 * hello against the real engine and registry, a fresh deployment each round (so every round creates
 * a project, network and container, as a new deployment does), removed again untimed. Prints every
 * round with the provider's own phase split (prepare = pull, validate, extract, services, override;
 * up = `compose up -d`; wait = until installed) and the median.
 *
 * Usage: npx tsx reference-agent/bench/compose-apply.ts [--rounds 5] [--settle-ms N]
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { LogEvent } from "../src/log.js";
import { ComposeProvider } from "../src/providers/compose/compose-provider.js";
import type { ComponentSpec } from "../src/providers/provider.js";
import {
  cleanupDevice,
  publishFixtureComponents,
  TEST_REGISTRY,
} from "../test/support/compose-components.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    "settle-ms": { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const SOCKET = process.env.MARGO_DOCKER_SOCKET ?? "/var/run/docker.sock";
const deviceId = `margo-t-bench-${randomUUID().slice(0, 8)}`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const workDir = await mkdtemp(join(tmpdir(), "margo-t-bench-"));
let timing: LogEvent | undefined;
const provider = new ComposeProvider({
  deviceId,
  dockerSocket: SOCKET,
  workDir,
  plainHttpRegistries: [TEST_REGISTRY],
  log: (e) => {
    if (e.msg === "compose apply timing") timing = e;
  },
  ...(values["settle-ms"] !== undefined ? { settleMs: Number(values["settle-ms"]) } : {}),
});
const projects: string[] = [];
try {
  const hello = (await publishFixtureComponents("compose-single")).hello;
  if (!hello) throw new Error("compose-single has no hello");
  const never = new AbortController().signal;
  // The compose command is detected once per provider: keep that out of the rounds.
  await provider.probe();
  const totals: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const spec: ComponentSpec = {
      deploymentId: randomUUID(),
      deploymentName: `margo-t-bench-${i}`,
      namespace: "margo-t",
      componentName: "hello",
      repository: hello.repository,
      revision: hello.revision,
      wait: true,
      timeoutMs: 60_000,
      parameters: {},
      injectedEnv: {},
      specHash: "b1",
    };
    timing = undefined;
    const t0 = performance.now();
    const out = await provider.apply(spec, never);
    const ms = Math.round(performance.now() - t0);
    totals.push(ms);
    const t = timing as LogEvent | undefined;
    console.log(
      `round ${i + 1}: ${out.state} ${ms} ms (prepare ${t?.prepareMs} ms, up ${t?.upMs} ms, wait ${t?.waitMs} ms)`,
    );
    await provider.remove(spec, never);
  }
  console.log(`median apply: ${median(totals)} ms over ${ROUNDS} rounds`);
} finally {
  await cleanupDevice(SOCKET, deviceId, projects);
  await rm(workDir, { recursive: true, force: true });
}
