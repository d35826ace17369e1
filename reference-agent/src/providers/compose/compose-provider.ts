import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AgentLog } from "../../log.js";
import { pullComposeArchiveBytes } from "../oci-component.js";
import type {
  ApplyOutcome,
  ComponentRef,
  ComponentSpec,
  ObservedComponent,
  Provider,
  ProviderFailure,
  ProviderProbe,
  RemoveOutcome,
} from "../provider.js";
import { type ComposeCommand, detectCompose, runCli } from "./compose-cli.js";
import { composeServices } from "./compose-file.js";
import { type ContainerInspect, DockerApi } from "./docker-api.js";
import { exitCodeFromStatus, isCompleted } from "./one-shot.js";
import { composeEnv, composeOverride } from "./override.js";
import {
  COMPOSE_PROJECT_LABEL,
  COMPOSE_SERVICE_LABEL,
  composeProjectName,
  LABEL,
} from "./project.js";

export interface ComposeProviderOptions {
  deviceId: string;
  /** Engine socket path, e.g. /var/run/docker.sock. */
  dockerSocket: string;
  /** Root of the per-project folders (extracted archives, override, meta). */
  workDir: string;
  /** Compose command; unset = `docker compose` if it answers, else `docker-compose`. */
  command?: string[];
  plainHttpRegistries: string[];
  log: AgentLog;
  /**
   * How often wait polls the engine while a container is not yet running or healthy (default
   * 100 ms; one list and one inspect per container over the local socket, cheap).
   */
  pollMs?: number;
  /**
   * How long every container must have been running before wait reports installed (default
   * 250 ms). "Running" right after `up -d` says little: a process that crashes on a bad config
   * exits a moment later, and item 73 wants that reported as failed, not installed. Counted from
   * the container's StartedAt, so the time `compose up` spent after the start is not waited twice.
   */
  settleMs?: number;
}

/**
 * What apply wrote beside the extracted tree, so observe knows which services must exist (a
 * container removed by hand is "degraded", not "fewer containers, all fine") and remove can run
 * `compose down` with the same files and variables after an agent restart.
 */
interface ProjectMeta {
  project: string;
  ref: ComponentRef;
  specHash: string;
  services: string[];
  /** Project directory (top dir of the extracted archive). */
  projectDir: string;
  override: string;
  /** Parameters and injected variables, for `${VAR}` in compose.yaml on down. */
  vars: Record<string, string>;
}

const META_FILE = "margo.json";
const OVERRIDE_FILE = "margo.override.yaml";

class ApplyFailed extends Error {
  constructor(readonly failure: ProviderFailure) {
    super(failure.message);
    this.name = "ApplyFailed";
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function lastLines(s: string, n = 6): string {
  return s.trim().split("\n").slice(-n).join("\n");
}

/**
 * ComposeProvider runs Compose components on one Docker Engine: pull and verify the archive, validate
 * and extract it, `compose up` under a project named by deployment and component, then judge the
 * result through the Engine API. Works against any engine socket, so a test can use a fresh engine.
 */
export class ComposeProvider implements Provider {
  readonly type = "compose" as const;
  private readonly docker: DockerApi;
  private compose: ComposeCommand | undefined;
  private readonly pollMs: number;
  private readonly settleMs: number;

  constructor(private readonly opts: ComposeProviderOptions) {
    this.docker = new DockerApi(opts.dockerSocket);
    this.pollMs = opts.pollMs ?? 100;
    this.settleMs = opts.settleMs ?? 250;
  }

  private projectDir(project: string): string {
    return join(this.opts.workDir, project);
  }

  private env(vars: Record<string, string>): NodeJS.ProcessEnv {
    return composeEnv(this.opts.dockerSocket, vars);
  }

  /** The compose command, found once (a host does not grow or lose compose between calls). */
  private async composeCommand(): Promise<ComposeCommand | { reason: string }> {
    if (this.compose) return this.compose;
    const r = await detectCompose(this.env({}), this.opts.command);
    if ("reason" in r) return r;
    this.compose = r.found;
    return r.found;
  }

  async probe(): Promise<ProviderProbe> {
    let engine: string;
    try {
      await this.docker.ping();
      engine = (await this.docker.version()).Version;
    } catch (e) {
      return {
        available: false,
        reason: `docker engine at ${this.opts.dockerSocket} unreachable: ${(e as Error).message}`,
      };
    }
    const compose = await this.composeCommand();
    if ("reason" in compose) return { available: false, reason: compose.reason };
    return {
      available: true,
      version: `docker ${engine}, ${compose.argv.join(" ")} ${compose.version}`,
    };
  }

  async apply(spec: ComponentSpec, signal: AbortSignal): Promise<ApplyOutcome> {
    const deadline = Date.now() + spec.timeoutMs;
    const project = composeProjectName(spec);
    try {
      const compose = await this.composeCommand();
      if ("reason" in compose) {
        return { state: "failed", error: { code: "RUNTIME_UNAVAILABLE", message: compose.reason } };
      }
      // An engine that is down is the device's problem, not the component's: say so up front.
      try {
        await this.docker.ping();
      } catch (e) {
        const message = `docker engine at ${this.opts.dockerSocket} unreachable: ${(e as Error).message}`;
        return { state: "failed", error: { code: "RUNTIME_UNAVAILABLE", message } };
      }
      // Whether this is a first install decides what a failed up may clean away (see below);
      // asked while the archive is pulled.
      const [meta, before] = await Promise.all([
        this.prepare(spec, project, compose, signal, deadline),
        this.docker.listContainers({ [COMPOSE_PROJECT_LABEL]: project }),
      ]);
      const tUp = Date.now();
      const up = await runCli(
        [...this.composeArgs(compose, meta), "up", "-d", "--remove-orphans"],
        { env: this.env(meta.vars), signal, timeoutMs: Math.max(1, deadline - Date.now()) },
      );
      if (up.timedOut) {
        return timeoutFailure(project, spec, "compose up did not finish");
      }
      if (up.code !== 0) {
        if (before.length === 0) await this.dropHalfCreated(project);
        return {
          state: "failed",
          error: {
            code: "APPLY_FAILED",
            message: `compose up ${project} exited ${up.code ?? up.signal}: ${lastLines(up.stderr)}`,
          },
        };
      }
      await this.dropOldTrees(project, meta.projectDir);
      const tWait = Date.now();
      this.opts.log({ level: "info", msg: "compose up done", project, wait: spec.wait });
      const out = spec.wait
        ? await this.waitRunning(meta, signal, deadline - spec.timeoutMs, deadline)
        : ({ state: "installed" } as const);
      // Where an apply's wall time goes (bench/compose-apply.ts reads this).
      this.opts.log({
        level: "debug",
        msg: "compose apply timing",
        project,
        prepareMs: tUp - (deadline - spec.timeoutMs),
        upMs: tWait - tUp,
        waitMs: Date.now() - tWait,
      });
      return out;
    } catch (e) {
      if (e instanceof ApplyFailed) return { state: "failed", error: e.failure };
      if (!signal.aborted && (e as Error)?.name === "TimeoutError") {
        return timeoutFailure(project, spec, "pulling the component did not finish");
      }
      if (signal.aborted) throw signal.reason ?? e;
      return {
        state: "failed",
        error: { code: "APPLY_FAILED", message: `${project}: ${(e as Error).message}` },
      };
    }
  }

  /**
   * A first `up` that failed half way (e.g. the engine found no free address pool for the network,
   * or a port was taken at start) may have left a network and created-but-never-running containers.
   * Nothing of it serves anyone, a left network holds one of the engine's few address pools, and a
   * retry must start from a clean slate, so it goes. Volumes stay (compose reuses them; never risk
   * data). Only for a first install: a failed update keeps whatever still runs for observe to judge.
   */
  private async dropHalfCreated(project: string): Promise<void> {
    try {
      const byProject = { [COMPOSE_PROJECT_LABEL]: project };
      const left = await this.docker.listContainers(byProject);
      await Promise.all(left.map((c) => this.docker.removeContainer(c.Id)));
      for (const n of await this.docker.listNetworks(byProject)) {
        await this.docker.removeNetwork(n.Id);
      }
    } catch (e) {
      // The retry's `up` copes with leftovers; the cleanup failing must not hide the real error.
      this.opts.log({
        level: "warn",
        msg: "cleanup after failed compose up failed",
        project,
        error: (e as Error).message,
      });
    }
  }

  private composeArgs(compose: ComposeCommand, meta: ProjectMeta, override = true): string[] {
    const files = ["-f", join(meta.projectDir, "compose.yaml")];
    if (override) files.push("-f", meta.override);
    return [...compose.argv, "-p", meta.project, "--project-directory", meta.projectDir, ...files];
  }

  /**
   * Pull, verify, validate, extract (to a temp dir renamed into place, so a crash never leaves a
   * half tree in use), read which services the file defines, write override and meta.
   */
  private async prepare(
    spec: ComponentSpec,
    project: string,
    compose: ComposeCommand,
    signal: AbortSignal,
    deadline: number,
  ): Promise<ProjectMeta> {
    // The component's timeout covers the pull too: a registry that stalls must not hold it forever.
    const pullSignal = AbortSignal.any([
      signal,
      AbortSignal.timeout(Math.max(1, deadline - Date.now())),
    ]);
    const pulled = await pullComposeArchiveBytes(
      spec.repository,
      spec.revision,
      this.opts.plainHttpRegistries,
      pullSignal,
    );
    if (!pulled.ok) throw new ApplyFailed(pulled.error);
    const { validateComposeArchive, extractComposeArchive } = await import("@margo/proto/package");
    const checked = await validateComposeArchive(pulled.bytes, {
      componentName: spec.componentName,
    });
    const errors = checked.problems.filter((p) => p.severity === "error");
    if (errors.length > 0 || checked.topDir === undefined) {
      throw new ApplyFailed({
        code: "ARTIFACT_REJECTED",
        message: `compose archive of ${spec.componentName} rejected: ${errors
          .slice(0, 3)
          .map((p) => `${p.rule} at ${p.pointer}: ${p.message}`)
          .join("; ")}`,
      });
    }
    const base = this.projectDir(project);
    await mkdir(base, { recursive: true, mode: 0o700 });
    // One tree per artifact digest: a re-apply of the same revision reuses it.
    const treeName = `src-${pulled.manifestDigest.replace(/^[a-z0-9]+:/, "").slice(0, 16)}`;
    const tree = join(base, treeName);
    if (!(await exists(tree))) {
      const tmp = join(base, `.tmp-${randomBytes(6).toString("hex")}`);
      try {
        await extractComposeArchive(pulled.bytes, tmp);
        await rename(tmp, tree);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        if ((e as Error).name === "ArchiveRejectedError") {
          throw new ApplyFailed({ code: "ARTIFACT_REJECTED", message: (e as Error).message });
        }
        throw e;
      }
    }
    const meta: ProjectMeta = {
      project,
      ref: {
        deploymentId: spec.deploymentId,
        deploymentName: spec.deploymentName,
        namespace: spec.namespace,
        componentName: spec.componentName,
      },
      specHash: spec.specHash,
      services: [],
      projectDir: join(tree, checked.topDir),
      override: join(base, OVERRIDE_FILE),
      vars: { ...spec.injectedEnv, ...spec.parameters },
    };
    meta.services = await this.services(checked.composeYaml ?? "", compose, meta, signal, deadline);
    await writeFile(meta.override, composeOverride(this.opts.deviceId, spec, meta.services), {
      mode: 0o600,
    });
    await writeAtomic(join(base, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  }

  /**
   * The services `up` will create: read from compose.yaml (no CLI start on the apply path), or,
   * when the file alone cannot tell (`include`, an interpolated profile), from compose itself.
   */
  private async services(
    composeYaml: string,
    compose: ComposeCommand,
    meta: ProjectMeta,
    signal: AbortSignal,
    deadline: number,
  ): Promise<string[]> {
    const read = composeServices(composeYaml, meta.vars);
    if (Array.isArray(read)) return read;
    this.opts.log({ level: "debug", msg: "asking compose for services", why: read.unknown });
    const config = await runCli(
      [...this.composeArgs(compose, meta, false), "config", "--services"],
      {
        env: this.env(meta.vars),
        signal,
        timeoutMs: Math.max(1, deadline - Date.now()),
      },
    );
    if (config.code !== 0) {
      throw new ApplyFailed({
        code: config.timedOut ? "TIMEOUT" : "APPLY_FAILED",
        message: `compose config ${meta.project}: ${lastLines(config.stderr)}`,
      });
    }
    return config.stdout
      .split("\n")
      .map((x) => x.trim())
      .filter((x) => x !== "")
      .sort();
  }

  /** Older extracted revisions are no longer referenced by the running project once up succeeded. */
  private async dropOldTrees(project: string, keepDir: string): Promise<void> {
    const base = this.projectDir(project);
    for (const name of await readdir(base)) {
      if ((name.startsWith("src-") || name.startsWith(".tmp-")) && !keepDir.includes(`/${name}/`)) {
        await rm(join(base, name), { recursive: true, force: true });
      }
    }
  }

  /**
   * Items 72-73: poll the engine until every service runs (and is healthy where it has a
   * healthcheck) or has completed (a one-shot job that exited 0 and is not restarted, see
   * one-shot.ts). A container that exited non-zero or keeps restarting fails at once; past the
   * deadline the component fails with TIMEOUT.
   */
  private async waitRunning(
    meta: ProjectMeta,
    signal: AbortSignal,
    since: number,
    deadline: number,
  ): Promise<ApplyOutcome> {
    let pending = "no container seen yet";
    for (;;) {
      // When the only thing left is the settle window, sleep exactly until it closes.
      let settledAt = Number.POSITIVE_INFINITY;
      let onlySettling = true;
      const containers = await this.inspectProject(meta.project);
      const byService = new Map<string, ContainerInspect[]>();
      for (const c of containers) {
        const s = c.Config.Labels?.[COMPOSE_SERVICE_LABEL] ?? "";
        byService.set(s, [...(byService.get(s) ?? []), c]);
      }
      const waiting: string[] = [];
      for (const service of meta.services) {
        const list = byService.get(service) ?? [];
        if (list.length === 0) {
          waiting.push(`${service}: no container`);
          onlySettling = false;
          continue;
        }
        for (const c of list) {
          const st = c.State;
          const name = c.Name.replace(/^\//, "");
          const restartedNow = c.RestartCount > 0 && Date.parse(st.StartedAt) >= since;
          if (
            st.Dead ||
            st.Restarting ||
            (st.Status === "exited" && st.ExitCode !== 0) ||
            restartedNow
          ) {
            return {
              state: "failed",
              error: {
                code: "WORKLOAD_EXITED",
                message: `${name} (service ${service}) exited with code ${st.ExitCode} during startup`,
              },
            };
          }
          if (isCompleted(st, c.HostConfig?.RestartPolicy?.Name)) continue;
          const settled = Date.parse(st.StartedAt) + this.settleMs;
          if (!st.Running) {
            waiting.push(`${name}: ${st.Status}`);
            onlySettling = false;
          } else if (st.Health && st.Health.Status !== "healthy" && st.Health.Status !== "none") {
            waiting.push(`${name}: ${st.Health.Status}`);
            onlySettling = false;
          } else if (Date.now() < settled) {
            waiting.push(`${name}: just started`);
            settledAt = Math.min(settledAt, settled);
          }
        }
      }
      if (waiting.length === 0) return { state: "installed" };
      pending = waiting.join(", ");
      const left = deadline - Date.now();
      if (left <= 0) {
        return timeoutFailure(meta.project, undefined, `still waiting for ${pending}`);
      }
      const next = onlySettling ? Math.max(1, settledAt - Date.now()) : this.pollMs;
      await sleep(Math.min(next, left), signal);
    }
  }

  /** Every non-one-off container of a project, inspected (state, exit code, health, labels). */
  private async inspectProject(project: string): Promise<ContainerInspect[]> {
    const list = await this.docker.listContainers({ [COMPOSE_PROJECT_LABEL]: project });
    const inspected = await Promise.all(
      list
        .filter((c) => c.Labels["com.docker.compose.oneoff"] !== "True")
        // Removed between list and inspect: as if it had not been listed.
        .map((c) => this.docker.inspectContainer(c.Id).catch(() => undefined)),
    );
    return inspected.filter((c): c is ContainerInspect => c !== undefined);
  }

  private async readMeta(project: string): Promise<ProjectMeta | undefined> {
    try {
      return JSON.parse(
        await readFile(join(this.projectDir(project), META_FILE), "utf8"),
      ) as ProjectMeta;
    } catch {
      return undefined;
    }
  }

  /**
   * One Engine API call per component (the drift check runs every few seconds for every
   * deployment): the container list already carries labels, state and the health summary. Only a
   * container that exited 0 is inspected too, for its restart policy: a completed one-shot service
   * is healthy, not drift to repair.
   */
  async observe(ref: ComponentRef): Promise<ObservedComponent> {
    const project = composeProjectName(ref);
    const meta = await this.readMeta(project);
    const containers = (
      await this.docker.listContainers({ [COMPOSE_PROJECT_LABEL]: project })
    ).filter(
      (c) =>
        c.Labels["com.docker.compose.oneoff"] !== "True" &&
        c.Labels[LABEL.deviceId] === this.opts.deviceId &&
        c.Labels[LABEL.deploymentId] === ref.deploymentId,
    );
    if (containers.length === 0) {
      // Installed by us (meta written) yet nothing left: removed by hand, drift to repair.
      return meta
        ? {
            health: "degraded",
            detail: `${project}: all containers missing (${meta.services.join(", ")})`,
          }
        : { health: "absent", detail: `${project}: no containers` };
    }
    const completed = new Set<string>();
    await Promise.all(
      containers
        .filter((c) => c.State === "exited" && exitCodeFromStatus(c.Status) === 0)
        .map(async (c) => {
          // Removed between list and inspect: not completed, reported as listed.
          const info = await this.docker.inspectContainer(c.Id).catch(() => undefined);
          if (info && isCompleted(info.State, info.HostConfig?.RestartPolicy?.Name)) {
            completed.add(c.Id);
          }
        }),
    );
    const hashes = new Set(containers.map((c) => c.Labels[LABEL.specHash] ?? ""));
    const specHash = hashes.size === 1 ? [...hashes][0] : undefined;
    const seen = new Set(containers.map((c) => c.Labels[COMPOSE_SERVICE_LABEL] ?? ""));
    const expected = meta?.services ?? [...seen];
    const problems: string[] = [];
    let starting = false;
    for (const s of expected) if (!seen.has(s)) problems.push(`${s}: missing`);
    for (const c of containers) {
      const name = (c.Names[0] ?? c.Id).replace(/^\//, "");
      const hash = c.Labels[LABEL.specHash];
      if (meta && hash !== meta.specHash) problems.push(`${name}: spec ${hash ?? "none"}`);
      if (completed.has(c.Id)) continue;
      if (c.State !== "running") problems.push(`${name}: ${c.State} (${c.Status})`);
      else if (c.Status.includes("(health: starting)")) starting = true;
      else if (c.Status.includes("(unhealthy)")) problems.push(`${name}: unhealthy`);
    }
    const detail = containers
      .map(
        (c) =>
          `${(c.Names[0] ?? c.Id).replace(/^\//, "")}=${completed.has(c.Id) ? "completed" : c.State}`,
      )
      .concat(problems.length ? [`problems: ${problems.join(", ")}`] : [])
      .join(" ");
    const health = problems.length > 0 ? "degraded" : starting ? "starting" : "running";
    return { health, detail, ...(specHash !== undefined ? { specHash } : {}) };
  }

  async remove(ref: ComponentRef, signal: AbortSignal): Promise<RemoveOutcome> {
    const project = composeProjectName(ref);
    const meta = await this.readMeta(project);
    let downError = "";
    try {
      const compose = await this.composeCommand();
      if (meta && !("reason" in compose) && (await exists(meta.projectDir))) {
        const down = await runCli(
          [
            ...this.composeArgs(compose, meta),
            "down",
            "--remove-orphans",
            "--volumes",
            "--timeout",
            "10",
          ],
          { env: this.env(meta.vars), signal, timeoutMs: 120_000 },
        );
        if (down.code !== 0) downError = lastLines(down.stderr, 3);
      }
      // Whatever compose left (or all of it, when the work dir is gone after a crash): by label.
      await this.sweep(project, ref);
      const left = (await this.docker.listContainers({ [COMPOSE_PROJECT_LABEL]: project })).length;
      if (left > 0) {
        return {
          state: "failed",
          error: {
            code: "REMOVE_FAILED",
            message: `${project}: ${left} container(s) left${downError ? `; ${downError}` : ""}`,
          },
        };
      }
      await rm(this.projectDir(project), { recursive: true, force: true });
      this.opts.log({ level: "info", msg: "compose project removed", project });
      return { state: "removed" };
    } catch (e) {
      if (signal.aborted) throw signal.reason ?? e;
      return {
        state: "failed",
        error: { code: "REMOVE_FAILED", message: `${project}: ${(e as Error).message}` },
      };
    }
  }

  private async sweep(project: string, ref: ComponentRef): Promise<void> {
    const byProject = { [COMPOSE_PROJECT_LABEL]: project };
    const ours = await this.docker.listContainers({
      [LABEL.deviceId]: this.opts.deviceId,
      [LABEL.deploymentId]: ref.deploymentId,
      [LABEL.component]: ref.componentName,
    });
    const all = [...ours, ...(await this.docker.listContainers(byProject))];
    for (const id of new Set(all.map((c) => c.Id))) await this.docker.removeContainer(id);
    for (const n of await this.docker.listNetworks(byProject))
      await this.docker.removeNetwork(n.Id);
    for (const v of await this.docker.listVolumes(byProject))
      await this.docker.removeVolume(v.Name);
  }

  async listInstalled(): Promise<ComponentRef[]> {
    const list = await this.docker.listContainers({ [LABEL.deviceId]: this.opts.deviceId });
    const found = new Map<string, ComponentRef>();
    for (const c of list) {
      const l = c.Labels;
      const deploymentId = l[LABEL.deploymentId];
      const componentName = l[LABEL.component];
      if (deploymentId === undefined || componentName === undefined) continue;
      found.set(`${deploymentId}\u0000${componentName}`, {
        deploymentId,
        componentName,
        deploymentName: l[LABEL.deploymentName] ?? "",
        namespace: l[LABEL.namespace] ?? "",
      });
    }
    return [...found.values()];
  }
}

function timeoutFailure(
  project: string,
  spec: ComponentSpec | undefined,
  why: string,
): ApplyOutcome {
  const limit = spec ? ` (${spec.timeoutMs} ms)` : "";
  return {
    state: "failed",
    error: { code: "TIMEOUT", message: `${project}: timeout${limit} exceeded: ${why}` },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}
