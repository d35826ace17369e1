import { parseArgs } from "node:util";
import { anchorsFromBundleJson } from "@margo/proto/identity/light";
import { parseYaml } from "@margo/proto/wire";
import { CONFIG_FILE, loadConfig } from "../config.js";
import { type AgentStoreReader, openReadOnly } from "../state/sqlite-store.js";
import type { DeploymentRecord, OutboxEntry } from "../state/store.js";
import { type CliIo, EXIT, type ExitCode, jsonText, UsageError } from "./exit.js";
import { type RunInfo, readLiveRunInfo } from "./run-file.js";

export const STATUS_HELP = `margo-agent status: what the agent holds and why (read-only; safe while it runs)

Usage:
  margo-agent status [--config F] [--json] [--errors N]

  --config F   agent.json of the agent (default ./agent.json)
  --json       one JSON document (64-bit values as strings) instead of text
  --errors N   how many recent errors to show (default 10)
  --help       this text
`;

/** The `status --json` document. */
export interface StatusReport {
  deviceId: string;
  stateDir: string;
  /** Whether an agent process runs on this state dir now (from run.json and its pid). */
  running: boolean;
  pid?: number;
  driverPort?: number | null;
  /** WatchManifest stream up (false when not running or polling only). */
  watching: boolean;
  runtimes: RunInfo["runtimes"];
  manifestVersion?: bigint;
  etag?: string;
  acceptedAt?: number;
  deployments: Array<{
    deploymentId: string;
    name: string;
    digest: string;
    desired: "present" | "absent";
    state: string;
    adoptedManifestVersion: bigint;
    appliedDigest?: string;
    error?: { code: string; source: string; message: string };
    components: Array<{
      name: string;
      state: string;
      error?: { code: string; source: string; message: string };
    }>;
    updatedAt: number;
  }>;
  outbox: { pending: number; delivered: number; deadLettered: number };
  /** Oldest undelivered reports first (at most 20), with why they are still waiting. */
  pendingReports: Array<{
    seq: number;
    deploymentId: string;
    attempts: number;
    lastError?: string;
  }>;
  deadLetters: Array<{ seq: number; deploymentId: string; reason?: string }>;
  lastErrors: Array<{ at: number; kind: string; message: string }>;
  trust: { sequence?: bigint; anchors: number; acceptedAt?: number; refreshHintSeconds?: number };
  capabilitiesDigest?: string;
}

export async function statusCommand(argv: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      json: { type: "boolean" },
      errors: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    io.out(STATUS_HELP);
    return EXIT.ok;
  }
  const errors = values.errors === undefined ? 10 : Number(values.errors);
  if (!Number.isInteger(errors) || errors < 0) {
    throw new UsageError(`--errors must be a whole number, got ${values.errors}`);
  }
  const config = await loadConfig(values.config ?? CONFIG_FILE);
  const store = openReadOnly(config.stateDir);
  let report: StatusReport;
  try {
    report = buildReport(config.deviceId, config.stateDir, store, errors);
  } finally {
    store.close();
  }
  io.out(values.json ? jsonText(report) : formatReport(report));
  return EXIT.ok;
}

/** Gather the report from the store (one read each) and the run file. */
export function buildReport(
  deviceId: string,
  stateDir: string,
  store: AgentStoreReader,
  errors: number,
): StatusReport {
  const run = readLiveRunInfo(stateDir);
  const sync = store.readSync();
  const trust = store.readTrust();
  let anchors = 0;
  if (trust) {
    try {
      anchors = anchorsFromBundleJson(trust.bundleJson).anchors.length;
    } catch {
      anchors = 0;
    }
  }
  const capabilitiesDigest = store.readCapabilitiesDigest(deviceId);
  return {
    deviceId,
    stateDir,
    running: run !== undefined,
    ...(run ? { pid: run.pid, driverPort: run.driverPort } : {}),
    watching: run?.watching ?? false,
    runtimes: run?.runtimes ?? [],
    ...(sync.manifestVersion !== undefined ? { manifestVersion: sync.manifestVersion } : {}),
    ...(sync.etag !== undefined ? { etag: sync.etag } : {}),
    ...(sync.acceptedAt !== undefined ? { acceptedAt: sync.acceptedAt } : {}),
    deployments: store.listDeployments().map(deploymentEntry),
    outbox: store.outboxStats(),
    pendingReports: store.outboxPending(20).map((e) => ({
      seq: e.seq,
      deploymentId: e.deploymentId,
      attempts: e.attempts,
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
    })),
    deadLetters: store.outboxDeadLetters(20).map((e: OutboxEntry) => ({
      seq: e.seq,
      deploymentId: e.deploymentId,
      ...(e.lastError !== undefined ? { reason: e.lastError } : {}),
    })),
    lastErrors: store.recentErrors(errors),
    trust: {
      anchors,
      ...(trust?.sequence !== undefined ? { sequence: trust.sequence } : {}),
      ...(trust ? { acceptedAt: trust.acceptedAt } : {}),
      ...(trust?.refreshHintSeconds !== undefined
        ? { refreshHintSeconds: trust.refreshHintSeconds }
        : {}),
    },
    ...(capabilitiesDigest !== undefined ? { capabilitiesDigest } : {}),
  };
}

function deploymentEntry(d: DeploymentRecord): StatusReport["deployments"][number] {
  return {
    deploymentId: d.deploymentId,
    name: deploymentName(d.yaml),
    digest: d.digest,
    desired: d.desired,
    state: d.state,
    adoptedManifestVersion: d.adoptedManifestVersion,
    ...(d.appliedDigest !== undefined ? { appliedDigest: d.appliedDigest } : {}),
    ...(d.error ? { error: d.error } : {}),
    components: d.components.map((c) => ({
      name: c.name,
      state: c.state,
      ...(c.error ? { error: c.error } : {}),
    })),
    updatedAt: d.updatedAt,
  };
}

/** metadata.name of the stored (digest-verified) ApplicationDeployment, "" if unreadable. */
function deploymentName(yaml: Uint8Array): string {
  const doc = parseYaml(yaml).value as { metadata?: { name?: unknown } } | undefined;
  const name = doc?.metadata?.name;
  return typeof name === "string" ? name : "";
}

const iso = (ms: number | undefined) => (ms === undefined ? "-" : new Date(ms).toISOString());

/** Plain text for people: one fact per line, problems spelled out where they are. */
export function formatReport(r: StatusReport): string {
  const lines: string[] = [];
  lines.push(`device         ${r.deviceId}`);
  lines.push(`state dir      ${r.stateDir}`);
  lines.push(
    `agent          ${r.running ? `running (pid ${r.pid}${r.driverPort ? `, DeviceDriver on port ${r.driverPort}` : ""})` : "not running"}`,
  );
  if (r.running) {
    lines.push(`sync           ${r.watching ? "WatchManifest stream + polling" : "polling"}`);
    for (const rt of r.runtimes) {
      lines.push(
        `runtime        ${rt.type}: ${rt.available ? `available${rt.version ? ` (${rt.version})` : ""}` : `unavailable: ${rt.reason ?? "?"}`}`,
      );
    }
  }
  lines.push(
    `manifest       ${r.manifestVersion === undefined ? "none accepted yet" : `version ${r.manifestVersion}, ETag ${r.etag ?? "-"}, accepted ${iso(r.acceptedAt)}`}`,
  );
  lines.push(
    `trust          ${r.trust.anchors} anchor(s)${r.trust.sequence !== undefined ? `, sequence ${r.trust.sequence}` : ""}${r.trust.acceptedAt !== undefined ? `, accepted ${iso(r.trust.acceptedAt)}` : ""}`,
  );
  lines.push(
    `status outbox  ${r.outbox.pending} pending, ${r.outbox.delivered} delivered, ${r.outbox.deadLettered} dead-lettered`,
  );
  for (const p of r.pendingReports) {
    lines.push(
      `  pending #${p.seq} ${p.deploymentId} (${p.attempts} attempt(s)${p.lastError ? `: ${p.lastError}` : ""})`,
    );
  }
  for (const d of r.deadLetters) {
    lines.push(`  dead-lettered #${d.seq} ${d.deploymentId}: ${d.reason ?? "refused"}`);
  }
  lines.push(`deployments    ${r.deployments.length}`);
  for (const d of r.deployments) {
    lines.push(
      `  ${d.name || "(unnamed)"} ${d.deploymentId}: ${d.state} (desired ${d.desired}, manifest ${d.adoptedManifestVersion})`,
    );
    if (d.error) lines.push(`    error ${d.error.code} from ${d.error.source}: ${d.error.message}`);
    for (const c of d.components) {
      lines.push(
        `    ${c.name}: ${c.state}${c.error ? ` - ${c.error.code}: ${c.error.message}` : ""}`,
      );
    }
  }
  lines.push(`recent errors  ${r.lastErrors.length}`);
  for (const e of r.lastErrors) lines.push(`  ${iso(e.at)} ${e.kind}: ${e.message}`);
  return lines.join("\n");
}
