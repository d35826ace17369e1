/**
 * A WfmDriver for vendors without the gRPC driver service: one configured shell command per
 * operation. Values go in through `{placeholder}` substitution, always shell-quoted (ids come from
 * the WFM and must never be able to inject shell syntax); stdout is the proto3 JSON of the
 * matching WfmDriverService response. Exit 1 = the WFM refused; any other failure = environment.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DeploymentStatusManifest, wfmDriver } from "@margo/proto";
import type { WfmDriverConfig } from "../../../config/types.js";
import { learnSecretEnv } from "../../../core/redact.js";
import { type WfmDriver, WfmDriverRefused, WfmDriverUnsupported } from "../context.js";
import type { EvidenceRecorder } from "./recorder.js";

type ShellConfig = Extract<WfmDriverConfig, { kind: "shell" }>;
type Op = keyof ShellConfig["commands"];

/** The command printed something that is not the response JSON it owes. */
export class ShellDriverOutputError extends Error {
  override readonly name = "ShellDriverOutputError";
}

/** POSIX single-quote a value: safe for any byte string inside `sh -c`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Replace `{name}` with the quoted value; a placeholder with no value becomes '' (so a template
 * can always name it). Unknown braces that are not identifiers are left alone (JSON in templates).
 */
export function substitute(template: string, values: Record<string, string | undefined>): string {
  return template.replace(/\{([A-Za-z][A-Za-z0-9]*)\}/g, (whole, name: string) =>
    name in values ? shellQuote(values[name] ?? "") : whole,
  );
}

export interface ShellDriverOptions {
  config: ShellConfig;
  recorder: EvidenceRecorder;
  /** Per-command timeout (default 60 s; publish pulls from a registry). */
  timeoutMs?: number;
}

const PLACEHOLDERS = [
  "ociReference",
  "plainHttp",
  "applicationId",
  "version",
  "profileType",
  "profileId",
  "clientId",
  "deviceId",
  "deploymentId",
  "parametersJson",
  "parametersFile",
  "includeHistory",
  "vendorReference",
] as const;
type Values = Partial<Record<(typeof PLACEHOLDERS)[number], string>>;

/**
 * Exit code by which a shell driver command says "the WFM refused this request". A dedicated
 * code, not 1: sh exits 1 for any failing script line, and a broken command must be an error,
 * never read as the WFM refusing (64 = EX_USAGE of sysexits.h, "the input was refused").
 */
export const SHELL_REFUSED_EXIT = 64;

export class ShellWfmDriver implements WfmDriver {
  constructor(private readonly opts: ShellDriverOptions) {
    // Commands name $VENDOR_TOKEN, but the tool may echo its value: redaction must know it.
    learnSecretEnv(opts.config.env);
  }

  private async run(op: Op, values: Values): Promise<unknown> {
    const template = this.opts.config.commands[op] as string | undefined;
    // An operation the vendor left without a command cannot be exercised: checks needing it skip.
    if (template === undefined || template.trim() === "")
      throw new WfmDriverUnsupported(`driver ${op}: no shell command configured`);
    const all: Record<string, string | undefined> = {};
    for (const p of PLACEHOLDERS) all[p] = values[p];
    let tmp: string | undefined;
    if (template.includes("{parametersFile}")) {
      tmp = await mkdtemp(join(tmpdir(), "margo-conf-params-"));
      const file = join(tmp, "parameters.json");
      await writeFile(file, values.parametersJson ?? "{}");
      all.parametersFile = file;
    }
    const command = substitute(template, all);
    try {
      const { code, stdout, stderr } = await this.exec(command);
      this.opts.recorder.record({
        kind: "command",
        at: new Date().toISOString(),
        command,
        exitCode: code,
        stdout,
        stderr,
      });
      if (code === SHELL_REFUSED_EXIT)
        throw new WfmDriverRefused(`driver ${op} refused: ${stderr.trim() || stdout.trim()}`);
      if (code !== 0)
        throw new Error(`driver ${op} command failed (exit ${code ?? "signal"}): ${stderr.trim()}`);
      const text = stdout.trim();
      if (text === "") return {};
      try {
        return JSON.parse(text);
      } catch {
        throw new ShellDriverOutputError(`driver ${op} printed no JSON: ${text.slice(0, 200)}`);
      }
    } finally {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }

  private exec(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cfg = this.opts.config;
    return new Promise((resolve, reject) => {
      const child = spawn("sh", ["-c", command], {
        cwd: cfg.cwd,
        env: { ...process.env, ...(cfg.env ?? {}) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), this.opts.timeoutMs ?? 60_000);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async info() {
    const r = wfmDriver.InfoResponse.fromJSON(await this.run("info", {}));
    return {
      vendor: r.vendor,
      product: r.product,
      version: r.version,
      margoVersion: r.margoVersion,
      features: [...r.features],
    };
  }

  async reset() {
    await this.run("reset", {});
  }

  async publish(ociReference: string, plainHttp: boolean) {
    const r = wfmDriver.PublishApplicationResponse.fromJSON(
      await this.run("publish", { ociReference, plainHttp: String(plainHttp) }),
    );
    if (!r.applicationId)
      throw new ShellDriverOutputError("driver publish printed no applicationId");
    return {
      applicationId: r.applicationId,
      version: r.version,
      ...(r.vendorReference ? { vendorReference: r.vendorReference } : {}),
    };
  }

  async deploy(req: Parameters<WfmDriver["deploy"]>[0]) {
    const r = wfmDriver.DeployResponse.fromJSON(
      await this.run("deploy", {
        applicationId: req.applicationId,
        version: req.version,
        profileType: req.profileType,
        profileId: req.profileId,
        clientId: req.clientId,
        deviceId: req.deviceId,
        parametersJson: JSON.stringify(req.parameters ?? {}),
        vendorReference: req.vendorReference,
      }),
    );
    if (!r.deploymentId) throw new ShellDriverOutputError("driver deploy printed no deploymentId");
    return { deploymentId: r.deploymentId };
  }

  async update(deploymentId: string, parameters: Record<string, unknown>) {
    await this.run("update", { deploymentId, parametersJson: JSON.stringify(parameters) });
  }

  async undeploy(deploymentId: string) {
    await this.run("undeploy", { deploymentId });
  }

  async statuses(req: Parameters<WfmDriver["statuses"]>[0]) {
    const r = wfmDriver.ListReportedStatusesResponse.fromJSON(
      await this.run("statuses", {
        clientId: req.clientId,
        deploymentId: req.deploymentId,
        includeHistory: req.includeHistory === undefined ? undefined : String(req.includeHistory),
      }),
    );
    return r.statuses.map((s) => ({
      clientId: s.clientId,
      status: s.status as DeploymentStatusManifest,
      ...(s.receivedAt ? { receivedAt: s.receivedAt } : {}),
    }));
  }

  async capabilities(clientId: string, deviceId: string) {
    const r = wfmDriver.GetDeviceCapabilitiesResponse.fromJSON(
      await this.run("capabilities", { clientId, deviceId }),
    );
    return {
      found: r.found,
      ...(r.found && r.capabilities ? { capabilities: r.capabilities } : {}),
    };
  }
}
