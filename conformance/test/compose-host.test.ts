/**
 * Fresh Compose hosts for real: two at once, each a dockerd in its own network namespace, a
 * busybox container on each, proof that neither engine (nor its containers) sees the other's
 * network, then nothing left behind. A second test kills the owning process outright and shows
 * that the next run's reaper takes the orphaned host down.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  COMPOSE_HOST_RUN_ROOT,
  type ComposeHost,
  listNetns,
  reapStaleComposeHosts,
  startComposeHost,
} from "../src/runtime/compose-host.js";

const run = promisify(execFile);
const IMAGE =
  process.env.MARGO_FIXTURE_IMAGE ??
  `${process.env.MARGO_REGISTRY ?? "127.0.0.1:5000"}/margo-fixtures/busybox:1`;
const SOURCE = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const MODULE = fileURLToPath(new URL("../src/runtime/compose-host.ts", import.meta.url));
/** Indexes of their own (the self-conformance run picks from 20..219 by pid; collisions are refused, not shared). */
const INDEX_A = 241;
const INDEX_B = 242;
const INDEX_ORPHAN = 243;

const started: ComposeHost[] = [];
const scratch: string[] = [];
// Hosts stop after each test, so a failed assertion cannot leave an index held for the next test.
afterEach(async () => {
  for (const h of started.splice(0)) await h.stop().catch(() => undefined);
});
afterAll(async () => {
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

async function docker(host: ComposeHost, ...args: string[]): Promise<string> {
  const r = await run("docker", ["-H", host.dockerHost, ...args], { timeout: 30_000 });
  return r.stdout.trim();
}

/**
 * What A's page looks like from a one-shot container on `host` (busybox-static's wget crashes in
 * its resolver, so a raw HTTP request through nc): the page names the container that answered.
 */
async function fetchFrom(host: ComposeHost, ip: string): Promise<string> {
  try {
    return await docker(
      host,
      "run",
      "--rm",
      "--label",
      "org.margo.test=1",
      IMAGE,
      "sh",
      "-c",
      `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 ${ip} 8080`,
    );
  } catch (e) {
    return `failed: ${(e as Error).message}`;
  }
}

function daemonPid(h: ComposeHost): number {
  return Number(readFileSync(join(COMPOSE_HOST_RUN_ROOT, h.netns, "docker.pid"), "utf8").trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** Processes whose command line names this host's runtime folder (dockerd, its containerd, shims). */
function processesOf(netns: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(netns)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function expectGone(
  netns: string,
  index: number,
  pid: number,
  workDir: string,
): Promise<void> {
  expect(await listNetns()).not.toContain(netns);
  expect(existsSync(`/sys/class/net/mch${index}h`)).toBe(false);
  expect(alive(pid)).toBe(false);
  expect(processesOf(netns)).toEqual([]);
  expect(existsSync(join(COMPOSE_HOST_RUN_ROOT, netns))).toBe(false);
  expect(existsSync(workDir)).toBe(false);
}

describe("fresh Compose hosts", () => {
  it("two hosts at once: own engines, own networks, torn down without a trace", {
    timeout: 90_000,
  }, async () => {
    const base = await mkdtemp(join(tmpdir(), "margo-ch-test-"));
    scratch.push(base);
    const lines: string[] = [];
    const [a, b] = await Promise.all(
      [INDEX_A, INDEX_B].map((index) =>
        startComposeHost({
          workDir: join(base, `host-${index}`),
          index,
          preloadImages: [IMAGE],
          sourceDockerHost: SOURCE,
          log: (l) => lines.push(l),
        }),
      ),
    );
    if (!a || !b) throw new Error("unreachable");
    started.push(a, b);
    expect(a.netns).toMatch(new RegExp(`^margo-ch-${INDEX_A}-${process.pid}$`));
    expect(a.dockerHost).toBe(`unix://${a.socketPath}`);

    // Each engine runs in its own network namespace, neither of them ours.
    const ours = await readlink("/proc/self/ns/net");
    const nsA = await readlink(`/proc/${daemonPid(a)}/ns/net`);
    const nsB = await readlink(`/proc/${daemonPid(b)}/ns/net`);
    expect(new Set([ours, nsA, nsB]).size).toBe(3);

    // A web server on each; each engine lists only its own container.
    const serve = [
      "sh",
      "-c",
      'mkdir -p /www && echo "from-$HOSTNAME" > /www/index.html && exec httpd -f -p 8080 -h /www',
    ];
    const idA = await docker(
      a,
      "run",
      "-d",
      "--label",
      "org.margo.test=1",
      "--name",
      "web-a",
      "--hostname",
      "web-a",
      IMAGE,
      ...serve,
    );
    const idB = await docker(
      b,
      "run",
      "-d",
      "--label",
      "org.margo.test=1",
      "--name",
      "web-b",
      "--hostname",
      "web-b",
      IMAGE,
      ...serve,
    );
    expect(await docker(a, "ps", "-q", "--no-trunc")).toBe(idA);
    expect(await docker(b, "ps", "-q", "--no-trunc")).toBe(idB);
    const ipA = await docker(a, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", idA);
    expect(ipA).toMatch(/^10\.212\./);

    // Positive control: A's server answers from A's own network...
    expect(await fetchFrom(a, ipA)).toMatch(/\nfrom-web-a$/);
    // ...but not from B's: B's containers cannot see A's network (the same address there, if
    // any, is one of B's own containers).
    expect(await fetchFrom(b, ipA)).not.toMatch(/from-web-a/);
    // The main engine's bridge is untouched.
    expect(existsSync("/sys/class/net/docker0")).toBe(true);

    const pids = [daemonPid(a), daemonPid(b)];
    await Promise.all([a.stop(), b.stop()]);
    await expectGone(a.netns, INDEX_A, pids[0] ?? 0, join(base, `host-${INDEX_A}`));
    await expectGone(b.netns, INDEX_B, pids[1] ?? 0, join(base, `host-${INDEX_B}`));
    expect(lines.some((l) => l.includes("stopped"))).toBe(true);
  });

  it("refuses an index a live host holds", { timeout: 60_000 }, async () => {
    const base = await mkdtemp(join(tmpdir(), "margo-ch-test-"));
    scratch.push(base);
    const h = await startComposeHost({
      workDir: join(base, "one"),
      index: INDEX_A,
      preloadImages: [],
      sourceDockerHost: SOURCE,
      log: () => {},
    });
    started.push(h);
    await expect(
      startComposeHost({
        workDir: join(base, "two"),
        index: INDEX_A,
        preloadImages: [],
        sourceDockerHost: SOURCE,
        log: () => {},
      }),
    ).rejects.toThrow(/index 241 is in use/);
    await h.stop();
  });

  it("a host whose owner died is reaped by the next run", { timeout: 60_000 }, async () => {
    const base = await mkdtemp(join(tmpdir(), "margo-ch-test-"));
    scratch.push(base);
    const script = join(base, "owner.mts");
    const workDir = join(base, "orphan");
    await writeFile(
      script,
      [
        `import { startComposeHost } from ${JSON.stringify(MODULE)};`,
        `const h = await startComposeHost({ workDir: ${JSON.stringify(workDir)}, index: ${INDEX_ORPHAN}, preloadImages: [], sourceDockerHost: ${JSON.stringify(SOURCE)}, log: () => {} });`,
        "console.log(JSON.stringify({ netns: h.netns }));",
        "setInterval(() => {}, 1000);",
      ].join("\n"),
    );
    const owner = spawn("npx", ["tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
      detached: true,
    });
    const netns = await new Promise<string>((res, rej) => {
      owner.stdout.once("data", (d: Buffer) =>
        res((JSON.parse(d.toString()) as { netns: string }).netns),
      );
      owner.once("exit", (c) => rej(new Error(`owner exited ${c} before starting the host`)));
    });
    const pid = Number(
      readFileSync(join(COMPOSE_HOST_RUN_ROOT, netns, "docker.pid"), "utf8").trim(),
    );
    // The live owner's host is not touched.
    expect(await reapStaleComposeHosts()).not.toContain(netns);
    expect(alive(pid)).toBe(true);

    // npx -> node: kill the whole group the way a crashed run dies (no cleanup code runs).
    process.kill(-(owner.pid ?? 0), "SIGKILL");
    await new Promise((r) => owner.once("exit", r));
    for (let i = 0; i < 50 && processesOf(script).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(alive(pid)).toBe(true);
    const reaped = await reapStaleComposeHosts();
    expect(reaped).toContain(netns);
    await expectGone(netns, INDEX_ORPHAN, pid, workDir);
  });
});
