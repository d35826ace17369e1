import Docker from "dockerode";

/**
 * Docker Engine helpers for the acceptance tests: the tests look at the real engine (not at what
 * the agent says it did), break things by hand the way an operator would, and clean up by the
 * labels the Compose provider puts on every container.
 */

export const docker = new Docker({
  socketPath: process.env.DOCKER_SOCKET ?? "/var/run/docker.sock",
});

const DEVICE_LABEL = "org.margo.device-id";
const DEPLOYMENT_LABEL = "org.margo.deployment-id";
const PROJECT_LABEL = "com.docker.compose.project";

export interface WorkloadContainer {
  id: string;
  name: string;
  state: string;
  /** Container creation time, epoch seconds (Docker's resolution). */
  created: number;
  labels: Record<string, string>;
  component: string | undefined;
  service: string | undefined;
}

function toWorkload(c: Docker.ContainerInfo): WorkloadContainer {
  return {
    id: c.Id,
    name: (c.Names[0] ?? "").replace(/^\//, ""),
    state: c.State,
    created: c.Created,
    labels: c.Labels,
    component: c.Labels["org.margo.component"],
    service: c.Labels["com.docker.compose.service"],
  };
}

/** Every container (running or not) of one deployment. */
export async function deploymentContainers(deploymentId: string): Promise<WorkloadContainer[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${DEPLOYMENT_LABEL}=${deploymentId}`] },
  });
  return list.map(toWorkload);
}

/** Every container (running or not) the agent of `deviceId` created. */
export async function deviceContainers(deviceId: string): Promise<WorkloadContainer[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${DEVICE_LABEL}=${deviceId}`] },
  });
  return list.map(toWorkload);
}

/** Environment of a container as a map (from `docker inspect`). */
export async function containerEnv(id: string): Promise<Record<string, string>> {
  const info = await docker.getContainer(id).inspect();
  const env: Record<string, string> = {};
  for (const kv of info.Config.Env ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** Creation time with sub-second resolution (inspect's RFC 3339 `Created`), epoch ms. */
export async function containerCreatedMs(id: string): Promise<number> {
  const info = await docker.getContainer(id).inspect();
  return Date.parse(info.Created);
}

/** `docker kill`: the process dies, the container stays (exited). */
export async function killContainer(id: string): Promise<void> {
  await docker.getContainer(id).kill();
}

/** `docker rm -f`: the container is gone. */
export async function removeContainer(id: string): Promise<void> {
  await docker.getContainer(id).remove({ force: true });
}

/** Poll `fn` until it returns a truthy value; throws with `what` and the last value on timeout. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const why = lastErr ? ` (last error: ${(lastErr as Error).message})` : "";
      throw new Error(`timed out waiting for ${what}; last value ${show(last)}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 150));
  }
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x))?.slice(0, 800);
  } catch {
    return String(v);
  }
}

/** Running containers of one deployment, once there are exactly `count` of them. */
export function waitRunning(
  deploymentId: string,
  count: number,
  timeoutMs = 30_000,
): Promise<WorkloadContainer[]> {
  return waitUntil(
    `${count} running container(s) of ${deploymentId}`,
    async () => {
      const all = await deploymentContainers(deploymentId);
      const running = all.filter((c) => c.state === "running");
      return running.length === count && all.length === count ? running : undefined;
    },
    { timeoutMs },
  );
}

/**
 * Remove everything the agents of these devices left: containers by the device label, then the
 * networks and volumes of their compose projects. Safe to call when nothing is there.
 */
export async function cleanupDevices(deviceIds: string[]): Promise<void> {
  const projects = new Set<string>();
  for (const dev of deviceIds) {
    for (const c of await deviceContainers(dev)) {
      const p = c.labels[PROJECT_LABEL];
      if (p) projects.add(p);
      await docker
        .getContainer(c.id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    }
  }
  for (const p of projects) {
    const nets = await docker.listNetworks({ filters: { label: [`${PROJECT_LABEL}=${p}`] } });
    for (const n of nets)
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
    const vols = await docker.listVolumes({ filters: { label: [`${PROJECT_LABEL}=${p}`] } });
    for (const v of vols.Volumes ?? []) {
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
    }
  }
}
