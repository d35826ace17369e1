/**
 * Fresh Compose hosts: a real Docker Engine in its own network namespace, started for one
 * conformance run and torn down after it (issue 5, item 4). The device under test deploys onto
 * it, and the device suite judges the containers through its Engine API, so nothing the main
 * engine runs (other tests, other runs) can be mistaken for the device's work.
 *
 * Recipe (`shared/docs/machine.md`, "Extra Compose hosts"): `ip netns add`, a veth pair with a
 * /30 under 10.203.<index>.0, a default route via the host end, then dockerd started through
 * `nsenter --net` (never `ip netns exec`: it remounts /sys and hides the cgroups). A second
 * dockerd is never started in the main network namespace: it would delete the main `docker0`.
 *
 * Layout: the daemon's socket, exec root and pid file live under `/run/margo-ch/<netns>/`
 * (short paths: unix socket paths are limited to 107 bytes, and containerd puts its own socket
 * under the exec root), the data root and the daemon log under the caller's `workDir`.
 * `/run/margo-ch/<netns>/owner.json` names the run that owns the host so that a later run can
 * reap what a dead one left behind (`reapStaleComposeHosts`).
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

/** A running fresh Docker Engine in its own network namespace. */
export interface ComposeHost {
  /** `unix:///run/margo-ch/<netns>/docker.sock`: give it to the device as DOCKER_HOST. */
  readonly dockerHost: string;
  /** The socket path alone (for dockerode's `socketPath`). */
  readonly socketPath: string;
  /** The network namespace name (`margo-ch-<index>-<pid>`). */
  readonly netns: string;
  /** Remove every container, stop the daemon, delete the veth, the namespace and the folders. Idempotent. */
  stop(): Promise<void>;
}

export interface ComposeHostOptions {
  /** Folder for the data root and the daemon log (created; removed by stop()). */
  workDir: string;
  /** 1..250: picks the /30 under 10.203.<index>.0; concurrent hosts must use different indexes. */
  index: number;
  /** Images copied from the source engine (`docker save | docker load`): the fresh engine cannot pull. */
  preloadImages: string[];
  /** Engine the preload images come from, e.g. unix:///var/run/docker.sock. */
  sourceDockerHost: string;
  log(line: string): void;
}

/** A step of starting or stopping a Compose host failed; the message names the step. */
export class ComposeHostError extends Error {
  override readonly name = "ComposeHostError";
}

/** Where every host's short-path runtime state lives (socket, exec root, pid file, owner). */
export const COMPOSE_HOST_RUN_ROOT = "/run/margo-ch";
const NETNS_PREFIX = "margo-ch-";
/** Address pool of the fresh engines' own networks: apart from the main daemon's 10.210/16. */
const ADDRESS_POOL = "base=10.212.0.0/16,size=24";
// dockerd answers in about 1 s on an idle machine, but took 8.6 s beside a full test run on 2 cores.
const PING_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

interface OwnerRecord {
  ownerPid: number;
  /** Start time of the owner (field 22 of /proc/<pid>/stat) so a reused pid is not mistaken for it. */
  ownerStart: string | null;
  index: number;
  workDir: string;
  vethHost: string;
}

/** Host-end and namespace-end interface names: short (IFNAMSIZ is 16) and unique per index. */
function vethNames(index: number): { host: string; ns: string } {
  return { host: `mch${index}h`, ns: `mch${index}n` };
}

/**
 * Start a fresh Docker Engine in its own network namespace. Reaps dead runs' leftovers first.
 * On any failure everything already created is torn down before the error is thrown.
 */
export async function startComposeHost(opts: ComposeHostOptions): Promise<ComposeHost> {
  const { index, log } = opts;
  if (!Number.isInteger(index) || index < 1 || index > 250) {
    throw new ComposeHostError(`index must be an integer 1..250, got ${index}`);
  }
  await reapStaleComposeHosts(log);
  const inUse = (await listNetns()).find((n) => n.startsWith(`${NETNS_PREFIX}${index}-`));
  if (inUse) {
    throw new ComposeHostError(
      `index ${index} is in use by the live Compose host ${inUse}; give concurrent runs different indexes`,
    );
  }
  const netns = `${NETNS_PREFIX}${index}-${process.pid}`;
  const runDir = join(COMPOSE_HOST_RUN_ROOT, netns);
  const workDir = resolve(opts.workDir);
  const socketPath = join(runDir, "docker.sock");
  const pidFile = join(runDir, "docker.pid");
  const logFile = join(workDir, "dockerd.log");
  const veth = vethNames(index);
  const hostAddr = `10.203.${index}.1`;
  const nsAddr = `10.203.${index}.2`;
  const t0 = Date.now();

  const host: ComposeHost = {
    dockerHost: `unix://${socketPath}`,
    socketPath,
    netns,
    stop: once(() => teardown({ netns, runDir, workDir, vethHost: veth.host, socketPath, log })),
  };
  try {
    // The runtime folder appears with its owner record already inside (built under a dot name,
    // then renamed): another run's reaper must never see it ownerless and take it for a leftover.
    const owner: OwnerRecord = {
      ownerPid: process.pid,
      ownerStart: await processStart(process.pid),
      index,
      workDir,
      vethHost: veth.host,
    };
    const staging = join(COMPOSE_HOST_RUN_ROOT, `.${netns}`);
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, "owner.json"), `${JSON.stringify(owner)}\n`);
    await rename(staging, runDir);
    await mkdir(join(workDir, "root"), { recursive: true });

    await step("create network namespace", ["ip", "netns", "add", netns]);
    // A stale veth of this index (its namespace already gone) would make the add fail.
    if (existsSync(`/sys/class/net/${veth.host}`)) {
      await step("delete stale veth", ["ip", "link", "del", veth.host]);
    }
    await step("create veth pair", [
      "ip",
      "link",
      "add",
      veth.host,
      "type",
      "veth",
      "peer",
      "name",
      veth.ns,
      "netns",
      netns,
    ]);
    await step("address host end", ["ip", "addr", "add", `${hostAddr}/30`, "dev", veth.host]);
    await step("bring host end up", ["ip", "link", "set", veth.host, "up"]);
    await step("bring namespace loopback up", ["ip", "-n", netns, "link", "set", "lo", "up"]);
    await step("address namespace end", [
      "ip",
      "-n",
      netns,
      "addr",
      "add",
      `${nsAddr}/30`,
      "dev",
      veth.ns,
    ]);
    await step("bring namespace end up", ["ip", "-n", netns, "link", "set", veth.ns, "up"]);
    await step("default route", ["ip", "-n", netns, "route", "add", "default", "via", hostAddr]);

    startDaemon({ netns, runDir, workDir, socketPath, pidFile, logFile });
    await waitForPing(socketPath, logFile);
    log(`compose host ${netns}: dockerd up at ${host.dockerHost} in ${Date.now() - t0} ms`);

    if (opts.preloadImages.length > 0) {
      const t1 = Date.now();
      await preload(opts.sourceDockerHost, host.dockerHost, opts.preloadImages);
      log(
        `compose host ${netns}: preloaded ${opts.preloadImages.join(", ")} in ${Date.now() - t1} ms`,
      );
    }
    return host;
  } catch (e) {
    await rm(join(COMPOSE_HOST_RUN_ROOT, `.${netns}`), { recursive: true, force: true });
    await host
      .stop()
      .catch((e2: unknown) => log(`compose host ${netns}: cleanup after failure: ${String(e2)}`));
    throw e;
  }
}

/** dockerd in the namespace, detached from us so that its lifetime is governed by the pid file, not our process group. */
function startDaemon(p: {
  netns: string;
  runDir: string;
  workDir: string;
  socketPath: string;
  pidFile: string;
  logFile: string;
}): void {
  const fd = openSync(p.logFile, "a");
  try {
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${p.netns}`,
        "dockerd",
        "-H",
        `unix://${p.socketPath}`,
        "--data-root",
        join(p.workDir, "root"),
        "--exec-root",
        join(p.runDir, "exec"),
        "--pidfile",
        p.pidFile,
        "--cgroup-parent",
        `/${p.netns}`,
        "--default-address-pool",
        ADDRESS_POOL,
      ],
      { detached: true, stdio: ["ignore", fd, fd] },
    );
    child.on("error", () => {
      // Reported by waitForPing (no answer; the log names why).
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
}

async function waitForPing(socketPath: string, logFile: string): Promise<void> {
  const deadline = Date.now() + PING_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await ping(socketPath)) return;
    await sleep(50);
  }
  throw new ComposeHostError(
    `dockerd did not answer _ping within ${PING_TIMEOUT_MS / 1000} s; log: ${logFile}`,
  );
}

/** GET /_ping over the unix socket; false on any error. */
async function ping(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return false;
  const http = await import("node:http");
  return new Promise((res) => {
    const req = http.request({ socketPath, path: "/_ping", method: "GET", timeout: 1000 }, (r) => {
      r.resume();
      r.on("end", () => res(r.statusCode === 200));
    });
    req.on("error", () => res(false));
    req.on("timeout", () => {
      req.destroy();
      res(false);
    });
    req.end();
  });
}

/** `docker -H src save IMAGES | docker -H dst load`. */
async function preload(src: string, dst: string, images: string[]): Promise<void> {
  await new Promise<void>((res, rej) => {
    const save = spawn("docker", ["-H", src, "save", ...images], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const load = spawn("docker", ["-H", dst, "load", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
    let saveErr = "";
    let loadErr = "";
    save.stderr.on("data", (d: Buffer) => (saveErr += d.toString()));
    load.stderr.on("data", (d: Buffer) => (loadErr += d.toString()));
    load.stdout.resume();
    save.stdout.pipe(load.stdin);
    let saveCode: number | null | undefined;
    let loadCode: number | null | undefined;
    const done = () => {
      if (saveCode === undefined || loadCode === undefined) return;
      if (saveCode !== 0) {
        rej(
          new ComposeHostError(
            `preload: docker save ${images.join(" ")} from ${src} failed (exit ${saveCode}): ${saveErr.trim()}`,
          ),
        );
      } else if (loadCode !== 0) {
        rej(
          new ComposeHostError(
            `preload: docker load into ${dst} failed (exit ${loadCode}): ${loadErr.trim()}`,
          ),
        );
      } else {
        res();
      }
    };
    save.on("error", (e) => rej(new ComposeHostError(`preload: cannot run docker: ${e.message}`)));
    load.on("error", (e) => rej(new ComposeHostError(`preload: cannot run docker: ${e.message}`)));
    save.on("close", (c) => {
      saveCode = c;
      done();
    });
    load.on("close", (c) => {
      loadCode = c;
      done();
    });
  });
}

/**
 * Tear one host down. Every step is attempted even when an earlier one fails; the first failure
 * is thrown at the end so a leftover is never silent.
 */
async function teardown(p: {
  netns: string;
  runDir: string;
  workDir: string;
  vethHost: string;
  socketPath: string;
  log(line: string): void;
}): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const t0 = Date.now();
  await attempt("remove containers", () => removeAllContainers(p.socketPath));
  await attempt("stop dockerd", () => stopDaemon(join(p.runDir, "docker.pid")));
  await attempt("unmount leftovers", () => unmountUnder([p.workDir, p.runDir]));
  if (existsSync(`/sys/class/net/${p.vethHost}`)) {
    await attempt("delete veth", () => step("delete veth", ["ip", "link", "del", p.vethHost]));
  }
  if ((await listNetns()).includes(p.netns)) {
    await attempt("delete network namespace", () =>
      step("delete network namespace", ["ip", "netns", "del", p.netns]),
    );
  }
  await attempt("remove cgroups", () => removeCgroups(p.netns));
  await attempt("remove folders", async () => {
    await rm(p.workDir, { recursive: true, force: true });
    await rm(p.runDir, { recursive: true, force: true });
  });
  if (errors.length > 0) {
    throw new ComposeHostError(
      `tearing down ${p.netns} left something behind: ${errors.join("; ")}`,
    );
  }
  p.log(`compose host ${p.netns}: stopped in ${Date.now() - t0} ms`);
}

/** Force-remove every container (running ones are killed): dockerd would otherwise stop each with a grace period. */
async function removeAllContainers(socketPath: string): Promise<void> {
  if (!(await ping(socketPath))) return;
  const { default: Docker } = await import("dockerode");
  const docker = new Docker({ socketPath });
  const list = await docker.listContainers({ all: true });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
}

/** SIGTERM by pid file, wait, SIGKILL after the timeout; dockerd stops its own containerd. */
async function stopDaemon(pidFile: string): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid === undefined || !alive(pid)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    while (alive(pid)) await sleep(50);
  }
}

/** Overlay and shm mounts a killed daemon left (rm would fail with EBUSY), deepest first. */
async function unmountUnder(dirs: string[]): Promise<void> {
  const mounts = (await readFile("/proc/self/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\040/g, " "))
    .filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await step(`unmount ${m}`, ["umount", "-l", m]);
}

/** Empty cgroup folders `/<netns>` that --cgroup-parent made under each v1 controller. */
async function removeCgroups(netns: string): Promise<void> {
  const root = "/sys/fs/cgroup";
  let controllers: string[];
  try {
    controllers = await readdir(root);
  } catch {
    return;
  }
  for (const c of controllers) {
    const dir = join(root, c, netns);
    if (existsSync(dir)) await rmdir(dir).catch(() => undefined);
  }
}

/**
 * Tear down Compose hosts of runs that are gone: namespaces named margo-ch-* whose owner process
 * (or, lacking an owner record, whose daemon) no longer lives. Returns the namespaces reaped.
 */
export async function reapStaleComposeHosts(
  log: (line: string) => void = () => {},
): Promise<string[]> {
  const names = new Set((await listNetns()).filter((n) => n.startsWith(NETNS_PREFIX)));
  // Runtime folders whose namespace is already gone (a half-finished teardown) are leftovers too.
  for (const d of await readdir(COMPOSE_HOST_RUN_ROOT).catch(() => [] as string[])) {
    if (d.startsWith(NETNS_PREFIX)) names.add(d);
  }
  const reaped: string[] = [];
  // Staging folders of a start that died between creating and renaming them.
  for (const d of await readdir(COMPOSE_HOST_RUN_ROOT).catch(() => [] as string[])) {
    if (!d.startsWith(`.${NETNS_PREFIX}`)) continue;
    const owner = await readOwner(join(COMPOSE_HOST_RUN_ROOT, d));
    if (owner && (await ownerAlive(owner))) continue;
    await rm(join(COMPOSE_HOST_RUN_ROOT, d), { recursive: true, force: true });
  }
  for (const netns of names) {
    const runDir = join(COMPOSE_HOST_RUN_ROOT, netns);
    const owner = await readOwner(runDir);
    const daemonPid = await readPid(join(runDir, "docker.pid"));
    const live =
      owner !== undefined ? await ownerAlive(owner) : daemonPid !== undefined && alive(daemonPid);
    if (live) continue;
    const index = owner?.index ?? Number(netns.slice(NETNS_PREFIX.length).split("-")[0]);
    log(`compose host ${netns}: owner gone, reaping its leftovers`);
    try {
      await teardown({
        netns,
        runDir,
        workDir: owner?.workDir ?? join(runDir, "missing-workdir"),
        vethHost: owner?.vethHost ?? vethNames(index).host,
        socketPath: join(runDir, "docker.sock"),
        log,
      });
      reaped.push(netns);
    } catch (e) {
      // Two runs starting at once may reap the same leftover; what one removed the other cannot.
      // A leftover that really stays is caught by the index check or by the next reap.
      log(`compose host ${netns}: reaping incomplete: ${(e as Error).message}`);
    }
  }
  return reaped;
}

/** The owning process still runs (same pid and the same start time: not a reused pid). */
async function ownerAlive(owner: OwnerRecord): Promise<boolean> {
  return alive(owner.ownerPid) && (await processStart(owner.ownerPid)) === owner.ownerStart;
}

async function readOwner(runDir: string): Promise<OwnerRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(runDir, "owner.json"), "utf8")) as OwnerRecord;
  } catch {
    return undefined;
  }
}

async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(pidFile, "utf8")).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie (exited, not yet reaped by its parent) is gone for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Network namespace names (`ip netns list` prints "name (id: N)"). */
export async function listNetns(): Promise<string[]> {
  const out = await run(["ip", "netns", "list"]);
  if (out.code !== 0) return [];
  return out.stdout
    .split("\n")
    .map((l) => l.trim().split(" ")[0] ?? "")
    .filter((n) => n !== "");
}

async function step(what: string, argv: string[]): Promise<void> {
  const r = await run(argv);
  if (r.code !== 0) {
    throw new ComposeHostError(
      `${what} failed: \`${argv.join(" ")}\` exited ${r.code}: ${r.stderr.trim()}`,
    );
  }
}

function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? "", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => res({ code: -1, stdout, stderr: e.message }));
    child.on("close", (code) => res({ code, stdout, stderr }));
  });
}

function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= f();
    return p;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
