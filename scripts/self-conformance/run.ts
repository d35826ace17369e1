/**
 * The self-conformance run: the harness judges the reference implementations exactly as it
 * judges a vendor's. It starts the reference WFM as a child process, writes a harness config
 * that points every suite at the reference code (WFM suite -> that WFM, device suite -> the
 * reference agent launched by `launch-agent.sh` onto the harness's fresh Compose host, package
 * suite -> the valid fixture packages), runs `margo-conformance run` as a child, reads the JSON
 * report and stops the WFM. The harness is only ever reached as a process: it must never share
 * code (or a bug) with what it judges.
 *
 * Mutants (`wfmMutant`, `agentMutant`) are passed as MARGO_TEST_MUTANT to the one side only, so
 * the mutant matrix can run this with one deliberately broken implementation at a time. Every
 * child gets an environment with MARGO_TEST_MUTANT removed unless this run asked for a mutant on
 * that side: a variable left in the caller's shell must never turn a "conformant" verdict into a
 * verdict on a broken program. The reference programs name an active mutant in their driver Info
 * features (`mutant:<name>`); the report's implementations must carry exactly the requested ones,
 * else the run fails with MutantMismatchError.
 *
 * CLI: npx tsx scripts/self-conformance/run.ts [--out DIR] [--suite wfm|device|package]...
 *        [--include PREFIX]... [--wfm-mutant NAME] [--agent-mutant NAME]
 *        [--loopback-index N] [--compose-host-index N] [--quiet] [--json]
 * Exit code: the harness's (0 = every core check passed).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { ConformanceConfig } from "../../conformance/src/config/types.js";
import type { RunReport, SuiteName } from "../../conformance/src/core/types.js";

export interface SelfConformanceOptions {
  /** Report folder (report.json, report.xml, report.html). */
  outDir: string;
  /** Default all three. */
  suites?: SuiteName[];
  /** MARGO_TEST_MUTANT for the reference WFM (test-only). */
  wfmMutant?: string;
  /** MARGO_TEST_MUTANT for the reference agent (test-only). */
  agentMutant?: string;
  /** Check id prefixes (select.include). */
  include?: string[];
  /** The WFM listens on 127.0.<loopbackIndex>.1:443; concurrent runs need different ones. Default: a free one. */
  loopbackIndex?: number;
  /** The device suite's Compose host takes 10.203.<composeHostIndex>.0/30. Default: loopbackIndex. */
  composeHostIndex?: number;
  /** No harness progress on stderr. */
  quiet?: boolean;
  log?(line: string): void;
}

export interface SelfConformanceResult {
  exitCode: number;
  report: RunReport;
  /** Whole run, WFM teardown included. */
  durationMs: number;
  /** Where the time went: fixture check and WFM start, the harness process, WFM stop. */
  phasesMs: { setup: number; harness: number; teardown: number };
}

/** The self-conformance run could not be set up or the harness produced no report. */
export class SelfConformanceError extends Error {
  override readonly name: string = "SelfConformanceError";
}

/**
 * The report shows an implementation running a mutant this run did not ask for (or not running
 * the one it asked for): its verdict is about some other program than the one meant.
 */
export class MutantMismatchError extends SelfConformanceError {
  override readonly name = "MutantMismatchError";
}

/** The test-only switch of both reference programs (reference-{wfm,agent}/src/mutants.ts). */
export const MUTANT_ENV = "MARGO_TEST_MUTANT";
/** How a reference program's driver Info names its active mutant among its features. */
const MUTANT_FEATURE_PREFIX = "mutant:";

/**
 * The environment for a child: this process's, minus MARGO_TEST_MUTANT, plus the one mutant this
 * child was asked to run. Every child goes through here, the harness included (it hands its
 * environment on to the agent it launches and to the WFM commands it runs).
 */
export function childEnv(
  mutant?: string,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env[MUTANT_ENV];
  if (mutant) env[MUTANT_ENV] = mutant;
  return env;
}

/**
 * What is wrong with the mutants the report's implementations claim (one line each; empty when
 * each side runs exactly the requested mutant, or none). A side the report does not describe
 * (suite not selected or unavailable) is not judged here.
 */
export function mutantMismatches(
  report: Pick<RunReport, "implementations">,
  requested: { wfmMutant?: string | undefined; agentMutant?: string | undefined },
): string[] {
  const sides: Array<[SuiteName, string, string | undefined]> = [
    ["wfm", "reference WFM", requested.wfmMutant],
    ["device", "reference agent", requested.agentMutant],
    ["package", "package source", undefined],
  ];
  const problems: string[] = [];
  for (const [suite, what, want] of sides) {
    const impl = report.implementations[suite];
    if (!impl) continue;
    const claimed = impl.features
      .filter((f) => f.startsWith(MUTANT_FEATURE_PREFIX))
      .map((f) => f.slice(MUTANT_FEATURE_PREFIX.length));
    const expected = want ? [want] : [];
    if (claimed.join(",") !== expected.join(",")) {
      problems.push(
        `${suite} suite: the ${what} runs ${claimed.length ? `mutant ${claimed.join(", ")}` : "no mutant"}, but this run asked for ${want ? `mutant ${want}` : "none"} (features: ${impl.features.join(", ")})`,
      );
    }
  }
  return problems;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WFM_BIN = join(REPO_ROOT, "reference-wfm/bin/margo-wfm");
const HARNESS_BIN = join(REPO_ROOT, "conformance/bin/margo-conformance");
const LAUNCH_AGENT = join(REPO_ROOT, "scripts/self-conformance/launch-agent.sh");
const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const FIXTURE_IMAGE = process.env.MARGO_FIXTURE_IMAGE ?? `${REGISTRY}/margo-fixtures/busybox:1`;
/**
 * Published fixture packages the package suite reads over OCI (the folders are read too): one
 * Compose and the Helm one, so the OCI checks of both component kinds apply.
 */
const FIXTURE_PACKAGE_REFS = [
  `${REGISTRY}/margo-fixtures/compose-multi/package:2.1.0`,
  `${REGISTRY}/margo-fixtures/helm-app/package:0.3.0`,
];
const ALL_SUITES: SuiteName[] = ["wfm", "device", "package"];
const WFM_TRUST_DOMAIN = "self.conformance.test";
const WFM_ID = "ref-wfm";

/** Children still running, killed on exit whatever path the process takes out. */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

export async function runSelfConformance(
  opts: SelfConformanceOptions,
): Promise<SelfConformanceResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const suites = opts.suites ?? ALL_SUITES;
  const outDir = resolve(opts.outDir);
  const loopbackIndex = opts.loopbackIndex ?? (await freeLoopbackIndex());
  const composeHostIndex = opts.composeHostIndex ?? loopbackIndex;
  await ensureFixturesPublished(suites, log);

  // Logs go beside the reports (they explain a red run); the scratch folder (WFM data, config)
  // always goes: the mutant matrix runs this dozens of times with intended failures.
  const logDir = join(outDir, "logs");
  await mkdir(logDir, { recursive: true });
  // A report left by an earlier run must never be read as this run's.
  await rm(join(outDir, "report.json"), { force: true });
  const work = await mkdtemp(join(tmpdir(), "margo-self-"));
  let wfm: ChildProcess | undefined;
  let harnessStart = 0;
  let harnessEnd = 0;
  let result: Omit<SelfConformanceResult, "durationMs" | "phasesMs"> | undefined;
  try {
    const needsWfm = suites.includes("wfm");
    let wfmSection: ConformanceConfig["wfm"];
    if (needsWfm) {
      const started = await startReferenceWfm({
        work,
        logDir,
        loopbackIndex,
        mutant: opts.wfmMutant,
        log,
      });
      wfm = started.child;
      wfmSection = started.section;
    }
    const config = harnessConfig({
      suites,
      outDir,
      include: opts.include ?? [],
      wfm: wfmSection,
      agentMutant: opts.agentMutant,
      composeHostIndex,
    });
    const configFile = join(logDir, "conformance.yaml");
    await writeFile(configFile, stringify(config));
    log(`self-conformance: harness config ${configFile}; suites ${suites.join(", ")}`);

    harnessStart = Date.now();
    const exitCode = await runHarness(configFile, outDir, opts.quiet ?? false, logDir);
    harnessEnd = Date.now();
    const reportFile = join(outDir, "report.json");
    if (!existsSync(reportFile)) {
      throw new SelfConformanceError(
        `the harness exited ${exitCode} without writing ${reportFile}; its output is in ${join(logDir, "harness.log")}`,
      );
    }
    const report = JSON.parse(await readFile(reportFile, "utf8")) as RunReport;
    const mismatches = mutantMismatches(report, opts);
    if (mismatches.length > 0) {
      throw new MutantMismatchError(
        `the report judged other programs than requested (is ${MUTANT_ENV} set in the environment?):\n  ${mismatches.join("\n  ")}`,
      );
    }
    result = { exitCode, report };
  } finally {
    if (wfm) await stopChild(wfm, "margo-wfm serve");
    await rm(work, { recursive: true, force: true });
  }
  const t1 = Date.now();
  const phasesMs = {
    setup: harnessStart - t0,
    harness: harnessEnd - harnessStart,
    teardown: t1 - harnessEnd,
  };
  log(
    `self-conformance: ${(t1 - t0) / 1000} s (set-up ${phasesMs.setup / 1000} s, harness ${phasesMs.harness / 1000} s, teardown ${phasesMs.teardown / 1000} s)`,
  );
  return { ...result, durationMs: t1 - t0, phasesMs };
}

/** `margo-wfm init` then `serve --json`; resolves once it printed its listening line. */
async function startReferenceWfm(p: {
  work: string;
  logDir: string;
  loopbackIndex: number;
  mutant: string | undefined;
  log(line: string): void;
}): Promise<{ child: ChildProcess; section: NonNullable<ConformanceConfig["wfm"]> }> {
  const host = `127.0.${p.loopbackIndex}.1`;
  const dataDir = join(p.work, "wfm");
  const env = childEnv(p.mutant);
  const init = await runToEnd(
    WFM_BIN,
    [
      "init",
      "--data-dir",
      dataDir,
      "--trust-domain",
      WFM_TRUST_DOMAIN,
      "--wfm-id",
      WFM_ID,
      "--host",
      host,
      "--hostname",
      host,
      "--hostname",
      "localhost",
      "--management-port",
      "443",
      "--trust-port",
      "0",
      "--grpc-port",
      "0",
      "--json",
    ],
    env,
  );
  if (init.code !== 0) {
    throw new SelfConformanceError(`margo-wfm init exited ${init.code}: ${init.stderr.trim()}`);
  }
  const child = spawn(WFM_BIN, ["serve", "--data-dir", dataDir, "--json"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  child.on("exit", () => live.delete(child));
  const logFile = join(p.logDir, "wfm.log");
  const { createWriteStream } = await import("node:fs");
  const sink = createWriteStream(logFile);
  child.stderr?.pipe(sink);
  const listening = await new Promise<{
    trust: { port: number };
    grpc: { port: number };
    management: { port: number };
  }>((res, rej) => {
    let buf = "";
    const timer = setTimeout(
      () =>
        rej(
          new SelfConformanceError(`margo-wfm serve did not listen within 30 s; log: ${logFile}`),
        ),
      30_000,
    );
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n").slice(0, -1)) {
        try {
          const ev = JSON.parse(line) as { event?: string };
          if (ev.event === "listening") {
            clearTimeout(timer);
            res(ev as never);
          }
        } catch {
          // not JSON: ignore
        }
      }
      buf = buf.slice(buf.lastIndexOf("\n") + 1);
    });
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      rej(
        new SelfConformanceError(
          `margo-wfm serve exited (${code ?? sig}) before listening; log: ${logFile}`,
        ),
      );
    });
  }).catch(async (e: unknown) => {
    await stopChild(child, "margo-wfm serve");
    throw e;
  });
  child.stdout?.resume();
  p.log(
    `self-conformance: reference WFM${p.mutant ? ` (mutant ${p.mutant})` : ""} on https://${host}:${listening.management.port}, trust :${listening.trust.port}, gRPC :${listening.grpc.port}`,
  );
  const ca = await issuingCa(join(dataDir, "identity"));
  const operator = join(dataDir, "operator");
  return {
    child,
    section: {
      url: `https://${host}:${listening.management.port}`,
      spiffeId: `spiffe://${WFM_TRUST_DOMAIN}/margo/wfm/${WFM_ID}`,
      trustBundleFile: join(operator, "bundle.pem"),
      bundleUrl: `https://${host}:${listening.trust.port}/.well-known/spiffe/bundle.json`,
      discoveryUrl: `https://${host}:${listening.trust.port}/.well-known/margo`,
      clients: {
        provisionCommand: `${WFM_BIN} client add {clientId} --out {dir} --data-dir ${dataDir}`,
        retireCommand: `${WFM_BIN} client remove {clientId} --data-dir ${dataDir}`,
      },
      ca,
      driver: {
        kind: "grpc",
        address: `${host}:${listening.grpc.port}`,
        certFile: join(operator, "svid.pem"),
        keyFile: join(operator, "svid.key"),
        caFile: join(operator, "bundle.pem"),
      },
    },
  };
}

/** The issuing CA's files (identity/state.json names them): lets the harness mint in-domain negatives. */
async function issuingCa(identityDir: string): Promise<{ certFile: string; keyFile: string }> {
  const state = JSON.parse(await readFile(join(identityDir, "state.json"), "utf8")) as {
    authorities: Array<{ cert: string; key: string; role: string }>;
  };
  const a = state.authorities.find((x) => x.role === "issuing");
  if (!a) throw new SelfConformanceError(`${identityDir}/state.json names no issuing CA`);
  return { certFile: join(identityDir, a.cert), keyFile: join(identityDir, a.key) };
}

/** The one YAML file the harness reads; only the selected suites' sections are written. */
export function harnessConfig(p: {
  suites: SuiteName[];
  outDir: string;
  include: string[];
  wfm: ConformanceConfig["wfm"];
  agentMutant: string | undefined;
  composeHostIndex: number;
}): ConformanceConfig {
  const config: ConformanceConfig = {
    suites: p.suites,
    output: { dir: p.outDir, formats: ["json", "junit", "html"] },
    select: { include: p.include, exclude: [], features: [], parts: ["core", "extended"] },
    knownFailing: [],
    checkTimeoutMs: 30_000,
    parallelSuites: true,
    registry: { address: REGISTRY, plainHttp: true },
  };
  if (p.suites.includes("wfm")) {
    if (!p.wfm) throw new SelfConformanceError("the WFM suite is selected but no WFM was started");
    config.wfm = p.wfm;
  }
  if (p.suites.includes("device")) {
    config.device = {
      launch: {
        command: `bash ${LAUNCH_AGENT}`,
        cwd: REPO_ROOT,
        env: {
          MARGO_REGISTRY: REGISTRY,
          ...(p.agentMutant ? { [MUTANT_ENV]: p.agentMutant } : {}),
        },
        readyTimeoutMs: 30_000,
      },
      driver: { tokenFile: "{workdir}/agent/driver.token" },
      composeHost: {
        enabled: true,
        preloadImages: [FIXTURE_IMAGE],
        sourceDockerHost: process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock",
        subnetIndex: p.composeHostIndex,
      },
      helm: { enabled: true },
      pollPeriodMs: 200,
      trustDomain: "device.conformance.test",
      wfmId: "conformance-wfm",
    };
  }
  if (p.suites.includes("package")) {
    config.package = {
      sources: [
        join(REPO_ROOT, "fixtures/apps/compose-single"),
        join(REPO_ROOT, "fixtures/apps/compose-multi"),
        join(REPO_ROOT, "fixtures/apps/helm-app"),
        ...FIXTURE_PACKAGE_REFS,
      ],
    };
  }
  return config;
}

/** `margo-conformance run`: progress to our stderr (unless quiet) and to <logDir>/harness.log. */
async function runHarness(
  configFile: string,
  outDir: string,
  quiet: boolean,
  logDir: string,
): Promise<number> {
  if (!existsSync(HARNESS_BIN)) {
    throw new SelfConformanceError(`${HARNESS_BIN} is missing: the harness CLI has not landed`);
  }
  await mkdir(outDir, { recursive: true });
  const { createWriteStream } = await import("node:fs");
  const sink = createWriteStream(join(logDir, "harness.log"));
  const child = spawn(HARNESS_BIN, ["run", "--config", configFile, "--out", outDir], {
    cwd: REPO_ROOT,
    // No mutant for the harness: the agent's comes only through device.launch.env.
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const tee = (d: Buffer) => {
    sink.write(d);
    if (!quiet) process.stderr.write(d);
  };
  child.stdout?.on("data", tee);
  child.stderr?.on("data", tee);
  // Our own SIGINT/SIGTERM reach the harness first, so it can tear its Compose host down.
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    return await new Promise<number>((res, rej) => {
      child.on("error", (e) =>
        rej(new SelfConformanceError(`cannot run ${HARNESS_BIN}: ${e.message}`)),
      );
      child.on("close", (code, sig) => res(code ?? (sig ? 128 + 15 : 1)));
    });
  } finally {
    live.delete(child);
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    sink.end();
  }
}

/**
 * The device suite runs the busybox fixture image (preloaded from the main engine) and the
 * package suite reads a published fixture package: both come from the main job's fixture
 * publishing. Publish them when missing rather than fail later inside a check.
 */
async function ensureFixturesPublished(
  suites: SuiteName[],
  log: (line: string) => void,
): Promise<void> {
  if (suites.includes("device")) {
    const r = await runToEnd(
      "docker",
      ["image", "inspect", "--format", "{{.Id}}", FIXTURE_IMAGE],
      childEnv(),
    );
    if (r.code !== 0) {
      throw new SelfConformanceError(
        `${FIXTURE_IMAGE} is not in the main Docker engine: run \`bash scripts/bootstrap.sh up\` first`,
      );
    }
  }
  if (suites.includes("package")) {
    const missing: string[] = [];
    for (const ref of FIXTURE_PACKAGE_REFS) {
      const [repo, tag] = splitRef(ref);
      const ok = await fetch(`http://${REGISTRY}/v2/${repo}/manifests/${tag}`, {
        method: "HEAD",
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
        .then((r) => r.ok)
        .catch(() => false);
      if (!ok) missing.push(ref);
    }
    if (missing.length > 0) {
      log(`self-conformance: ${missing.join(", ")} not in the registry; publishing the fixtures`);
      const r = await runToEnd(
        "npx",
        ["tsx", join(REPO_ROOT, "scripts/publish-fixtures.ts"), "--json"],
        childEnv(),
      );
      if (r.code !== 0) {
        throw new SelfConformanceError(
          `publishing the fixtures failed (exit ${r.code}): ${r.stderr.trim()}`,
        );
      }
    }
  }
}

function splitRef(ref: string): [string, string] {
  const noRegistry = ref.slice(ref.indexOf("/") + 1);
  const i = noRegistry.lastIndexOf(":");
  return [noRegistry.slice(0, i), noRegistry.slice(i + 1)];
}

/**
 * A loopback index whose 127.0.<i>.1:443 is free and whose Compose host index is unused: the
 * start is spread by pid so that concurrent runs rarely probe the same one first.
 */
async function freeLoopbackIndex(): Promise<number> {
  const { listNetns } = await import("../../conformance/src/runtime/compose-host.js");
  const netns = await listNetns();
  const start = 20 + (process.pid % 200);
  for (let k = 0; k < 200; k++) {
    const i = 20 + ((start - 20 + k) % 200);
    if (netns.some((n) => n.startsWith(`margo-ch-${i}-`))) continue;
    if (await portFree(`127.0.${i}.1`, 443)) return i;
  }
  throw new SelfConformanceError("no free loopback index (127.0.20-219.1:443 all taken)");
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => res(true)));
  });
}

/** SIGTERM, then SIGKILL after 10 s. */
async function stopChild(child: ChildProcess, what: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    process.stderr.write(`self-conformance: ${what} ignored SIGTERM for 10 s; killing it\n`);
    child.kill("SIGKILL");
  }, 10_000);
  await exited;
  clearTimeout(timer);
  live.delete(child);
}

function runToEnd(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { env, cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => res({ code: -1, stdout, stderr: e.message }));
    child.on("close", (code) => res({ code, stdout, stderr }));
  });
}

interface CliArgs {
  opts: SelfConformanceOptions;
  json: boolean;
}

function parseArgs(argv: string[]): CliArgs {
  const opts: SelfConformanceOptions = { outDir: join(REPO_ROOT, "conformance-report") };
  let json = false;
  const suites: SuiteName[] = [];
  const include: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new SelfConformanceError(`${a} needs a value`);
      return v;
    };
    if (a === "--out") opts.outDir = resolve(value());
    else if (a === "--suite") {
      const s = value();
      if (!ALL_SUITES.includes(s as SuiteName))
        throw new SelfConformanceError(`--suite ${s}: one of ${ALL_SUITES.join(", ")}`);
      suites.push(s as SuiteName);
    } else if (a === "--include") include.push(value());
    else if (a === "--wfm-mutant") opts.wfmMutant = value();
    else if (a === "--agent-mutant") opts.agentMutant = value();
    else if (a === "--loopback-index") opts.loopbackIndex = Number(value());
    else if (a === "--compose-host-index") opts.composeHostIndex = Number(value());
    else if (a === "--quiet") opts.quiet = true;
    else if (a === "--json") json = true;
    else throw new SelfConformanceError(`unknown option ${a}`);
  }
  if (suites.length > 0) opts.suites = suites;
  if (include.length > 0) opts.include = include;
  return { opts, json };
}

async function main(): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  try {
    const r = await runSelfConformance(args.opts);
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ exitCode: r.exitCode, durationMs: r.durationMs, summary: r.report.summary })}\n`,
      );
    } else {
      const s = r.report.summary;
      process.stdout.write(
        `self-conformance: ${s.conformant ? "CONFORMANT" : "NOT CONFORMANT"}: ${s.total} checks, ${s.pass} pass, ${s.fail} fail, ${s.error} error, ${s.skip} skip (core ${s.core.pass}/${s.core.total}) in ${(r.durationMs / 1000).toFixed(1)} s; reports in ${args.opts.outDir}\n`,
      );
    }
    return r.exitCode;
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
    return 3;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
