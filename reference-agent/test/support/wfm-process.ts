import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerCertificate } from "node:tls";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type ChannelCredentials, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { DeploymentState, type DeploymentStatusManifest, wfmDriver } from "@margo/proto";
import { readCredentials } from "@margo/proto/identity";
import { publishFixtureApp } from "../../../reference-wfm/test/support/fixture-apps.js";
import { reapOnExit } from "./reap.js";

const run = promisify(execFile);

/** The real `margo-wfm` shim: tests drive the WFM exactly as an operator would. */
export const MARGO_WFM = fileURLToPath(
  new URL("../../../reference-wfm/bin/margo-wfm", import.meta.url),
);

export const TRUST_DOMAIN = "example.org";
export const WFM_ID = "wfm-1";

export interface WfmPorts {
  management: number;
  trust: number;
  grpc: number;
}

/** One status report as the WFM stored it, flattened for assertions. */
export interface SeenStatus {
  deploymentId: string;
  state: string;
  components: Array<{ name: string; state: string; errorCode?: string }>;
  errorCode?: string;
  adoptedManifestVersion: bigint;
  receivedAt: number;
  raw: DeploymentStatusManifest;
}

/**
 * The operator side of a running WFM: its `WfmDriverService` over mTLS with the operator SVID
 * that `init` wrote, the server accepted on its SPIFFE ID only (same rule the CLI applies).
 */
export interface WfmDriver {
  /** Publish a fixture app (by folder name) to the test registry and make the WFM know it. */
  publishFixture(name: string): Promise<{ applicationId: string; version: string }>;
  deploy(
    clientId: string,
    deviceId: string,
    applicationId: string,
    parameters?: Record<string, unknown>,
  ): Promise<string>;
  updateDeployment(deploymentId: string, parameters: Record<string, unknown>): Promise<void>;
  undeploy(deploymentId: string): Promise<void>;
  /** Every accepted report in receipt order (history), or the latest per deployment. */
  listStatuses(opts?: {
    clientId?: string;
    deploymentId?: string;
    includeHistory?: boolean;
  }): Promise<SeenStatus[]>;
  capabilities(
    clientId: string,
    deviceId: string,
  ): Promise<wfmDriver.GetDeviceCapabilitiesResponse>;
  close(): void;
}

/** A reference WFM running as `margo-wfm serve`, a real child process. */
export interface WfmProcess {
  readonly dataDir: string;
  readonly ports: WfmPorts;
  readonly pid: number;
  /** https://127.0.0.1:<management> */
  readonly managementUrl: string;
  /** 127.0.0.1:<grpc> */
  readonly grpcAddress: string;
  /** The SPIFFE bundle on the trust listener. */
  readonly bundleUrl: string;
  readonly wfmSpiffeId: string;
  /** Everything `serve` wrote to stderr (all runs), for failure messages. */
  stderr(): string;
  /** `margo-wfm client add <id> --out DIR`: the agent's identity folder. */
  addClient(clientId: string, outDir: string): Promise<string>;
  driver(): WfmDriver;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait: nothing of the WFM's shutdown runs. */
  kill9(): Promise<void>;
  /** Stop (if running) and serve again from the same data dir on the SAME ports. */
  restart(): Promise<void>;
  /** Stop and delete the data dir. */
  dispose(): Promise<void>;
}

interface ServeChild {
  child: ChildProcess;
  pid: number;
  ports: WfmPorts;
  exited: Promise<void>;
}

/** Run one `margo-wfm` command to completion; rejects with its output on a non-zero exit. */
export async function margoWfm(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(MARGO_WFM, args, { timeout: 120_000 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`margo-wfm ${args.join(" ")} failed: ${err.message}\n${err.stderr ?? ""}`);
  }
}

/**
 * `margo-wfm init` in a fresh temp folder (all ports 0), then `serve`. Use `restart()` for tests
 * that need the WFM back on the same address (devices keep their configured URL).
 */
export async function startWfm(): Promise<WfmProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "margo-agent-wfm-"));
  await margoWfm([
    "init",
    "--data-dir",
    dataDir,
    "--trust-domain",
    TRUST_DOMAIN,
    "--wfm-id",
    WFM_ID,
    "--management-port",
    "0",
    "--trust-port",
    "0",
    "--grpc-port",
    "0",
    "--host",
    "127.0.0.1",
  ]);
  let errText = "";
  let current: ServeChild | undefined = await serve(dataDir, (s) => {
    errText += s;
  });
  const ports = { ...current.ports };
  const drivers: WfmDriver[] = [];

  const halt = async (signal: NodeJS.Signals) => {
    const c = current;
    if (!c) return;
    current = undefined;
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
    await c.exited;
  };

  return {
    dataDir,
    ports,
    get pid() {
      return current?.pid ?? -1;
    },
    managementUrl: `https://127.0.0.1:${ports.management}`,
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    bundleUrl: `https://127.0.0.1:${ports.trust}/.well-known/spiffe/bundle.json`,
    wfmSpiffeId: `spiffe://${TRUST_DOMAIN}/margo/wfm/${WFM_ID}`,
    stderr: () => errText,
    async addClient(clientId, outDir) {
      await margoWfm(["client", "add", clientId, "--out", outDir, "--data-dir", dataDir]);
      return outDir;
    },
    driver() {
      const d = openDriver(dataDir, ports.grpc);
      drivers.push(d);
      return d;
    },
    stop: () => halt("SIGTERM"),
    kill9: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      // wfm.json says port 0; pin the first run's ports so devices find the WFM where it was.
      const file = join(dataDir, "wfm.json");
      const cfg = JSON.parse(await readFile(file, "utf8")) as Record<
        string,
        { host: string; port: number }
      >;
      for (const key of ["management", "trust", "grpc"] as const) {
        const listen = cfg[key];
        if (listen) listen.port = ports[key];
      }
      await writeFile(file, `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o600 });
      current = await serve(dataDir, (s) => {
        errText += s;
      });
    },
    async dispose() {
      for (const d of drivers) d.close();
      await halt("SIGTERM");
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `margo-wfm serve --json` as a child; resolves once it printed its listening line. */
function serve(dataDir: string, onErr: (s: string) => void): Promise<ServeChild> {
  const child = spawn(MARGO_WFM, ["serve", "--json", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  reapOnExit(child);
  let err = "";
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
    onErr(c.toString());
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`margo-wfm serve did not listen within 30 s; stderr:\n${err}`));
    }, 30_000);
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`margo-wfm serve exited (${code ?? signal}) before listening:\n${err}`));
    };
    child.once("exit", onExit);
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      for (;;) {
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        let ev: { event?: string; pid?: number; management?: { port: number } } & Record<
          string,
          { port: number }
        >;
        try {
          ev = JSON.parse(line);
        } catch {
          continue;
        }
        if (ev.event !== "listening") continue;
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve({
          child,
          pid: ev.pid ?? child.pid ?? -1,
          ports: {
            management: ev.management?.port ?? 0,
            trust: ev.trust?.port ?? 0,
            grpc: ev.grpc?.port ?? 0,
          },
          exited,
        });
      }
    });
  });
}

/** SPIFFE authentication of the server: exactly one URI SAN, equal to the WFM's SPIFFE ID. */
function wfmIdentityCheck(cert: PeerCertificate, expected: string): Error | undefined {
  const uris = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
  return uris.length === 1 && uris[0] === expected
    ? undefined
    : new Error(`server presented ${uris.join(",") || "no SPIFFE ID"}, expected ${expected}`);
}

function openDriver(dataDir: string, grpcPort: number): WfmDriver {
  const expected = `spiffe://${TRUST_DOMAIN}/margo/wfm/${WFM_ID}`;
  let client: wfmDriver.WfmDriverServiceClient | undefined;
  const connect = async () => {
    if (client) return client;
    const files = await readCredentials(join(dataDir, "operator"));
    const creds: ChannelCredentials = credentials.createSsl(
      Buffer.from(files.bundlePem),
      Buffer.from(files.keyPem),
      Buffer.from(files.chainPem),
      { checkServerIdentity: (_h, cert) => wfmIdentityCheck(cert, expected) },
    );
    // SNI must be a DNS name; the identity check above is what authenticates the WFM.
    client = new wfmDriver.WfmDriverServiceClient(`127.0.0.1:${grpcPort}`, creds, {
      "grpc.ssl_target_name_override": "localhost",
    });
    return client;
  };
  const call = async <Res>(name: string, req: unknown, deadlineMs = 20_000): Promise<Res> => {
    const c = await connect();
    return new Promise<Res>((resolve, reject) => {
      // biome-ignore lint/suspicious/noExplicitAny: the generated client methods share one shape
      const fn = (c as any)[name] as (...a: unknown[]) => unknown;
      fn.call(
        c,
        req,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (e: ServiceError | null, r: Res) => {
          if (e) reject(new Error(`WfmDriver.${name}: ${e.code} ${e.details}`));
          else resolve(r);
        },
      );
    });
  };
  return {
    async publishFixture(name) {
      const ref = await publishFixtureApp(name);
      const r = await call<wfmDriver.PublishApplicationResponse>(
        "publishApplication",
        { ociReference: ref, plainHttp: true },
        120_000,
      );
      return { applicationId: r.applicationId, version: r.version };
    },
    async deploy(clientId, deviceId, applicationId, parameters = {}) {
      const r = await call<wfmDriver.DeployResponse>("deploy", {
        applicationId,
        clientId,
        deviceId,
        parameters,
        profile: { $case: "profileType", value: "compose" },
      });
      return r.deploymentId;
    },
    async updateDeployment(deploymentId, parameters) {
      await call("updateDeployment", { deploymentId, parameters });
    },
    async undeploy(deploymentId) {
      await call("undeploy", { deploymentId });
    },
    async listStatuses(opts = {}) {
      const r = await call<wfmDriver.ListReportedStatusesResponse>("listReportedStatuses", {
        clientId: opts.clientId,
        deploymentId: opts.deploymentId,
        includeHistory: opts.includeHistory ?? false,
      });
      return r.statuses.map((s) => flatten(s));
    },
    capabilities(clientId, deviceId) {
      return call<wfmDriver.GetDeviceCapabilitiesResponse>("getDeviceCapabilities", {
        clientId,
        deviceId,
      });
    },
    close: () => client?.close(),
  };
}

/** Wire name of a DeploymentState ("installed"), as the agent and the spec spell it. */
export function stateName(v: DeploymentState): string {
  const name = DeploymentState[v] ?? `UNKNOWN_${v}`;
  return name.replace(/^DEPLOYMENT_STATE_/, "").toLowerCase();
}

function flatten(s: wfmDriver.ReportedStatus): SeenStatus {
  const raw = s.status as DeploymentStatusManifest;
  return {
    deploymentId: raw.deploymentId,
    state: stateName(raw.status?.state ?? DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED),
    components: raw.components.map((c) => ({
      name: c.name,
      state: stateName(c.state),
      ...(c.error ? { errorCode: c.error.code } : {}),
    })),
    ...(raw.status?.error ? { errorCode: raw.status.error.code } : {}),
    adoptedManifestVersion: raw.adoptedManifestVersion,
    receivedAt: s.receivedAt?.getTime() ?? 0,
    raw,
  };
}
