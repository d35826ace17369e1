import { randomUUID } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLog } from "../src/log.js";
import { runCli } from "../src/providers/compose/compose-cli.js";
import { composeServices } from "../src/providers/compose/compose-file.js";
import { ComposeProvider } from "../src/providers/compose/compose-provider.js";
import { composeEnv } from "../src/providers/compose/override.js";
import {
  COMPOSE_PROJECT_LABEL,
  composeProjectName,
  LABEL,
} from "../src/providers/compose/project.js";
import type { ComponentSpec } from "../src/providers/provider.js";
import {
  cleanupDevice,
  FIXTURE_IMAGE,
  type PublishedRef,
  publishComposeText,
  publishFixtureComponents,
  startTamperingProxy,
  TEST_REGISTRY,
} from "./support/compose-components.js";

// Real Docker Engine, real registry, real compose CLI: the provider is judged by what the engine
// runs (inspected with dockerode, independently of the provider's own Engine API client).
const SOCKET = process.env.MARGO_DOCKER_SOCKET ?? "/var/run/docker.sock";
const docker = new Docker({ socketPath: SOCKET });
const deviceId = `margo-t-dev-${randomUUID().slice(0, 8)}`;
const OTEL = { HTTP_OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" };
const never = new AbortController().signal;

let workDir: string;
let provider: ComposeProvider;
let single: Record<string, PublishedRef>;
let multi: Record<string, PublishedRef>;
const own: Record<string, PublishedRef> = {};
const projects: string[] = [];

function spec(
  component: string,
  ref: PublishedRef,
  over: Partial<ComponentSpec> = {},
): ComponentSpec {
  const s: ComponentSpec = {
    deploymentId: randomUUID(),
    deploymentName: `margo-t-${component}`,
    namespace: "margo-t",
    componentName: component,
    repository: ref.repository,
    revision: ref.revision,
    wait: true,
    timeoutMs: 60_000,
    parameters: {},
    injectedEnv: OTEL,
    specHash: "h1",
    ...over,
  };
  projects.push(composeProjectName(s));
  return s;
}

async function containersOf(s: ComponentSpec) {
  return docker.listContainers({
    all: true,
    filters: {
      label: [`${LABEL.deviceId}=${deviceId}`, `${LABEL.deploymentId}=${s.deploymentId}`],
    },
  });
}

async function projectLeftovers(project: string) {
  const f = { label: [`${COMPOSE_PROJECT_LABEL}=${project}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters: f }),
    docker.listNetworks({ filters: f }),
    docker.listVolumes({ filters: f }),
  ]);
  return {
    containers: containers.length,
    networks: networks.length,
    volumes: volumes.Volumes?.length ?? 0,
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "margo-t-compose-"));
  provider = new ComposeProvider({
    deviceId,
    dockerSocket: SOCKET,
    workDir,
    plainHttpRegistries: [TEST_REGISTRY],
    log: silentLog,
    pollMs: 100,
  });
  [single, multi] = await Promise.all([
    publishFixtureComponents("compose-single"),
    publishFixtureComponents("compose-multi"),
  ]);
  own.exit1 = await publishComposeText(
    "margo-t-exit1",
    `services:\n  boom:\n    image: ${FIXTURE_IMAGE}\n    command: ["sh", "-c", "sleep 0.1; exit 1"]\n`,
  );
  own.slowHealthy = await publishComposeText(
    "margo-t-slow-healthy",
    `services:\n  slow:\n    image: ${FIXTURE_IMAGE}\n    init: true\n    command: ["sh", "-c", "sleep 2; mkdir -p /tmp; touch /tmp/ready; exec sleep 3600"]\n    healthcheck:\n      test: ["CMD", "test", "-f", "/tmp/ready"]\n      interval: 500ms\n      timeout: 2s\n      retries: 100\n`,
  );
  own.neverHealthy = await publishComposeText(
    "margo-t-never-healthy",
    `services:\n  stuck:\n    image: ${FIXTURE_IMAGE}\n    init: true\n    command: ["sleep", "3600"]\n    healthcheck:\n      test: ["CMD", "false"]\n      interval: 500ms\n      retries: 1000\n`,
  );
  // Publishes a port chosen by a parameter: a test holds that port so the first `up` fails half
  // way (network and container created, start refused), as a failure of the engine does.
  own.port = await publishComposeText(
    "margo-t-port",
    `services:\n  web:\n    image: ${FIXTURE_IMAGE}\n    init: true\n    command: ["httpd", "-f", "-p", "8080", "-h", "/"]\n    ports:\n      - "127.0.0.1:\${HOLD_PORT}:8080"\n`,
  );
  // An init job (restart default "no") and a job under on-failure, both exiting 0, beside a
  // server and a service the engine must keep up (unless-stopped) that exits 0 when stopped.
  own.oneShot = await publishComposeText(
    "margo-t-one-shot",
    [
      "services:",
      "  job:",
      `    image: ${FIXTURE_IMAGE}`,
      '    command: ["sh", "-c", "sleep 0.1; echo migrated"]',
      "  job2:",
      `    image: ${FIXTURE_IMAGE}`,
      "    restart: on-failure",
      '    command: ["true"]',
      "  server:",
      `    image: ${FIXTURE_IMAGE}`,
      "    init: true",
      '    command: ["sleep", "3600"]',
      "  keeper:",
      `    image: ${FIXTURE_IMAGE}`,
      "    restart: unless-stopped",
      `    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]`,
      "",
    ].join("\n"),
  );
  own.pair = await publishComposeText(
    "margo-t-pair",
    `services:\n  one:\n    image: ${FIXTURE_IMAGE}\n    init: true\n    command: ["sleep", "3600"]\n  two:\n    image: ${FIXTURE_IMAGE}\n    init: true\n    command: ["sh", "-c", "echo $$FROM_FILE; exec sleep 3600"]\n    environment:\n      FROM_FILE: \${GREETING:-unset}\n`,
  );
});

afterAll(async () => {
  await cleanupDevice(SOCKET, deviceId, projects);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("ComposeProvider on the real engine", () => {
  it("probe finds the engine and a compose command", async () => {
    const p = await provider.probe();
    expect(p.available).toBe(true);
    expect(p.version).toMatch(/^docker \d+\.\d+.*compose/);
  });

  it("probe names the reason when the engine socket is not there", async () => {
    const bad = new ComposeProvider({
      deviceId,
      dockerSocket: join(workDir, "no.sock"),
      workDir,
      plainHttpRegistries: [],
      log: silentLog,
    });
    const p = await bad.probe();
    expect(p.available).toBe(false);
    expect(p.reason).toContain("no.sock");
    const out = await bad.apply(spec("hello", single.hello as PublishedRef), never);
    expect(out.state === "failed" && out.error.code).toBe("RUNTIME_UNAVAILABLE");
  });

  describe("hello (compose-single)", () => {
    let s: ComponentSpec;
    let firstId: string;

    it("item 72-73, 89: installs, labels the container, injects OTel and parameter env", async () => {
      const hello = single.hello;
      if (!hello) throw new Error("fixture has no hello");
      s = spec("hello", hello, { parameters: { GREETING: "hi $there" } });
      const out = await provider.apply(s, never);
      expect(out).toEqual({ state: "installed" });
      const list = await containersOf(s);
      expect(list).toHaveLength(1);
      const info = await docker.getContainer(list[0]?.Id ?? "").inspect();
      firstId = info.Id;
      expect(info.State.Running).toBe(true);
      expect(info.Config.Labels).toMatchObject({
        [LABEL.deviceId]: deviceId,
        [LABEL.deploymentId]: s.deploymentId,
        [LABEL.deploymentName]: s.deploymentName,
        [LABEL.namespace]: "margo-t",
        [LABEL.component]: "hello",
        [LABEL.specHash]: "h1",
      });
      expect(info.Config.Env).toContain("HTTP_OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318");
      // `$` survives literally: the override escapes compose interpolation.
      expect(info.Config.Env).toContain("GREETING=hi $there");
      const seen = await provider.observe(s);
      expect(seen.health).toBe("running");
      expect(seen.specHash).toBe("h1");
    });

    it("applying the same spec again leaves the same single container", async () => {
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      const list = await containersOf(s);
      expect(list.map((c) => c.Id)).toEqual([firstId]);
    });

    it("a changed parameter recreates the container with the new environment", async () => {
      s = { ...s, parameters: { GREETING: "bye" }, specHash: "h2" };
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      const list = await containersOf(s);
      expect(list).toHaveLength(1);
      const info = await docker.getContainer(list[0]?.Id ?? "").inspect();
      expect(info.Id).not.toBe(firstId);
      expect(info.Config.Env).toContain("GREETING=bye");
      expect((await provider.observe(s)).specHash).toBe("h2");
    });

    it("a container removed by hand is degraded, and apply repairs it", async () => {
      const [c] = await containersOf(s);
      await docker.getContainer(c?.Id ?? "").remove({ force: true });
      const seen = await provider.observe(s);
      expect(seen.health).toBe("degraded");
      expect(seen.detail).toContain("hello");
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      expect((await provider.observe(s)).health).toBe("running");
      expect(await containersOf(s)).toHaveLength(1);
    });

    it("listInstalled names it with its deployment name and namespace", async () => {
      const refs = await provider.listInstalled();
      expect(refs).toContainEqual({
        deploymentId: s.deploymentId,
        deploymentName: s.deploymentName,
        namespace: "margo-t",
        componentName: "hello",
      });
    });

    it("remove leaves no container, network or work dir, and observe says absent", async () => {
      expect(await provider.remove(s, never)).toEqual({ state: "removed" });
      expect(await projectLeftovers(composeProjectName(s))).toEqual({
        containers: 0,
        networks: 0,
        volumes: 0,
      });
      await expect(stat(join(workDir, composeProjectName(s)))).rejects.toThrow();
      expect((await provider.observe(s)).health).toBe("absent");
      // Removing what is not there succeeds too.
      expect(await provider.remove(s, never)).toEqual({ state: "removed" });
    });
  });

  // Each case below has its own deployment id and project.
  describe("independent components", () => {
    it("one of two services killed by hand is degraded; parameters reach VAR interpolation in compose.yaml", async () => {
      const s = spec("margo-t-pair", own.pair as PublishedRef, { parameters: { GREETING: "yo" } });
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      const list = await containersOf(s);
      expect(list).toHaveLength(2);
      const two = list.find((c) => c.Labels["com.docker.compose.service"] === "two");
      const info = await docker.getContainer(two?.Id ?? "").inspect();
      expect(info.Config.Env).toContain("FROM_FILE=yo");
      const one = list.find((c) => c.Labels["com.docker.compose.service"] === "one");
      await docker.getContainer(one?.Id ?? "").kill();
      await waitFor("container exit", async () =>
        (await docker.getContainer(one?.Id ?? "").inspect()).State.Running ? undefined : true,
      );
      const seen = await provider.observe(s);
      expect(seen.health).toBe("degraded");
      expect(seen.detail).toMatch(/one.*exited/);
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      expect((await provider.observe(s)).health).toBe("running");
      expect(await containersOf(s)).toHaveLength(2);
    });

    it("item 73, drift: one-shot jobs that exit 0 complete; wait installs, observe is running, nothing is re-created", async () => {
      const s = spec("margo-t-one-shot", own.oneShot as PublishedRef, { timeoutMs: 30_000 });
      const t0 = Date.now();
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      // Well before the timeout: the exited jobs are done, not "still waiting".
      expect(Date.now() - t0).toBeLessThan(10_000);
      const list = await containersOf(s);
      expect(list).toHaveLength(4);
      const byService = (svc: string) =>
        list.find((c) => c.Labels["com.docker.compose.service"] === svc);
      const job = await docker.getContainer(byService("job")?.Id ?? "").inspect();
      expect(job.State.Status).toBe("exited");
      expect(job.State.ExitCode).toBe(0);
      const first = await provider.observe(s);
      expect(first.health).toBe("running");
      expect(first.detail).toMatch(/job-1=completed/);
      expect(first.detail).toMatch(/job2-1=completed/);
      // Later rounds of the drift check still see nothing to repair, and nothing was re-created.
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await provider.observe(s)).health).toBe("running");
      expect((await containersOf(s)).map((c) => c.Id).sort()).toEqual(list.map((c) => c.Id).sort());
      // A service with restart unless-stopped that is down (even with exit 0) is drift.
      const keeper = docker.getContainer(byService("keeper")?.Id ?? "");
      await keeper.stop({ t: 5 });
      const stopped = await keeper.inspect();
      expect(stopped.State.ExitCode).toBe(0);
      const seen = await provider.observe(s);
      expect(seen.health).toBe("degraded");
      expect(seen.detail).toMatch(/keeper-1: exited/);
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      expect((await provider.observe(s)).health).toBe("running");
      expect(await provider.remove(s, never)).toEqual({ state: "removed" });
    });

    it("services come from compose.yaml as compose itself lists them (profiles, anchors, odd names)", async () => {
      const text = [
        "x-base: &base",
        `  image: ${FIXTURE_IMAGE}`,
        "services:",
        "  a:",
        "    <<: *base",
        "  x-b: *base",
        "  c:",
        "    <<: *base",
        "    profiles: [dbg]",
        "  d:",
        "    <<: *base",
        "    profiles: [ops]",
        '  "1": *base',
        "",
      ].join("\n");
      const dir = await mkdtemp(join(tmpdir(), "margo-t-services-"));
      try {
        await writeFile(join(dir, "compose.yaml"), text);
        const cases: Record<string, string>[] = [{}, { COMPOSE_PROFILES: "ops" }];
        for (const vars of cases) {
          const r = await runCli(
            ["docker", "compose", "-p", "margo-t-services", "config", "--services"],
            {
              env: composeEnv(SOCKET, vars),
              cwd: dir,
            },
          );
          expect(r.code).toBe(0);
          const byCompose = r.stdout
            .split("\n")
            .filter((x) => x !== "")
            .sort();
          expect(composeServices(text, vars)).toEqual(byCompose);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("item 73: a service exiting 1 at start fails WORKLOAD_EXITED well before the timeout", async () => {
      const s = spec("margo-t-exit1", own.exit1 as PublishedRef, { timeoutMs: 30_000 });
      const t0 = Date.now();
      const out = await provider.apply(s, never);
      expect(out.state).toBe("failed");
      expect(out.state === "failed" && out.error.code).toBe("WORKLOAD_EXITED");
      expect(out.state === "failed" && out.error.message).toContain("code 1");
      expect(Date.now() - t0).toBeLessThan(15_000);
    });

    it("a first compose up that fails half way leaves nothing behind, and the retry installs", async () => {
      const holder = createServer();
      await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
      const port = String((holder.address() as AddressInfo).port);
      const s = spec("margo-t-port", own.port as PublishedRef, { parameters: { HOLD_PORT: port } });
      const project = composeProjectName(s);
      try {
        const out = await provider.apply(s, never);
        expect(out.state === "failed" && out.error.code).toBe("APPLY_FAILED");
        // The network (an address pool) and the never-started container are gone again.
        expect(await projectLeftovers(project)).toEqual({ containers: 0, networks: 0, volumes: 0 });
      } finally {
        await new Promise((r) => holder.close(r));
      }
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      expect((await provider.observe(s)).health).toBe("running");
      expect(await provider.remove(s, never)).toEqual({ state: "removed" });
    });

    it("item 72: wait false is installed as soon as compose up succeeded", async () => {
      const s = spec("margo-t-exit1", own.exit1 as PublishedRef, { wait: false });
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
    });

    it("item 73 (SHOULD): with a healthcheck, installed only once healthy", async () => {
      const s = spec("margo-t-slow-healthy", own.slowHealthy as PublishedRef);
      const t0 = Date.now();
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
      const [c] = await containersOf(s);
      const info = await docker.getContainer(c?.Id ?? "").inspect();
      expect(info.State.Health?.Status).toBe("healthy");
    });

    it("item 72: a component not healthy within its timeout fails TIMEOUT", async () => {
      const s = spec("margo-t-never-healthy", own.neverHealthy as PublishedRef, {
        timeoutMs: 8_000,
      });
      const t0 = Date.now();
      const out = await provider.apply(s, never);
      expect(out.state === "failed" && out.error.code).toBe("TIMEOUT");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(8_000);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(out.state === "failed" && out.error.message).toContain("starting");
      // Health still pending: observe says so (the reconciler decides what a timeout means).
      expect((await provider.observe(s)).health).toBe("starting");
    });

    it("item 74: blobs altered on the way fail DIGEST_MISMATCH and nothing is started", async () => {
      const proxy = await startTamperingProxy();
      try {
        const tampering = new ComposeProvider({
          deviceId,
          dockerSocket: SOCKET,
          workDir,
          plainHttpRegistries: [proxy.host],
          log: silentLog,
        });
        const hello = single.hello as PublishedRef;
        const s = spec("hello", {
          repository: hello.repository.replace(TEST_REGISTRY, proxy.host),
          revision: hello.revision,
        });
        const out = await tampering.apply(s, never);
        expect(out.state === "failed" && out.error.code).toBe("DIGEST_MISMATCH");
        expect(await projectLeftovers(composeProjectName(s))).toEqual({
          containers: 0,
          networks: 0,
          volumes: 0,
        });
        await expect(stat(join(workDir, composeProjectName(s)))).rejects.toThrow();
      } finally {
        await proxy.close();
      }
    });

    it("item 72: a registry that never answers fails TIMEOUT within the component timeout", async () => {
      const stalled = createServer(() => {
        // Accept and never answer.
      });
      await new Promise<void>((r) => stalled.listen(0, "127.0.0.1", r));
      const host = `127.0.0.1:${(stalled.address() as AddressInfo).port}`;
      try {
        const p = new ComposeProvider({
          deviceId,
          dockerSocket: SOCKET,
          workDir,
          plainHttpRegistries: [host],
          log: silentLog,
        });
        const s = spec(
          "hello",
          { repository: `oci://${host}/margo-t/hello`, revision: "1.0.0" },
          {
            timeoutMs: 1_500,
          },
        );
        const t0 = Date.now();
        const out = await p.apply(s, never);
        expect(out.state === "failed" && out.error.code).toBe("TIMEOUT");
        expect(Date.now() - t0).toBeLessThan(5_000);
      } finally {
        stalled.closeAllConnections();
        await new Promise((r) => stalled.close(r));
      }
    });

    it("a missing revision fails PULL_FAILED", async () => {
      const s = spec("hello", {
        repository: (single.hello as PublishedRef).repository,
        revision: "9.9.9",
      });
      const out = await provider.apply(s, never);
      expect(out.state === "failed" && out.error.code).toBe("PULL_FAILED");
    });

    it("remove after a crash lost the work dir still removes containers, network and volume", async () => {
      const s = spec("store", multi.store as PublishedRef);
      expect(await provider.apply(s, never)).toEqual({ state: "installed" });
      const project = composeProjectName(s);
      expect((await projectLeftovers(project)).volumes).toBe(1);
      await rm(join(workDir, project), { recursive: true, force: true });
      expect(await provider.remove(s, never)).toEqual({ state: "removed" });
      expect(await projectLeftovers(project)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    });

    it("an aborted apply rejects and kills the compose process", async () => {
      const s = spec("margo-t-never-healthy", own.neverHealthy as PublishedRef);
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("stop")), 1_500);
      await expect(provider.apply(s, ac.signal)).rejects.toThrow("stop");
    });

    it("compose v1 (docker-compose) installs and removes the same way", async () => {
      const v1 = new ComposeProvider({
        deviceId,
        dockerSocket: SOCKET,
        workDir,
        command: ["docker-compose"],
        plainHttpRegistries: [TEST_REGISTRY],
        log: silentLog,
        pollMs: 100,
      });
      expect((await v1.probe()).version).toMatch(/docker-compose 1\./);
      const s = spec("margo-t-pair", own.pair as PublishedRef, { parameters: { GREETING: "v1" } });
      expect(await v1.apply(s, never)).toEqual({ state: "installed" });
      const list = await containersOf(s);
      expect(list).toHaveLength(2);
      expect((await v1.observe(s)).health).toBe("running");
      expect(await v1.apply(s, never)).toEqual({ state: "installed" });
      expect((await containersOf(s)).map((c) => c.Id).sort()).toEqual(list.map((c) => c.Id).sort());
      expect(await v1.remove(s, never)).toEqual({ state: "removed" });
      expect(await projectLeftovers(composeProjectName(s))).toEqual({
        containers: 0,
        networks: 0,
        volumes: 0,
      });
    });
  });
});
