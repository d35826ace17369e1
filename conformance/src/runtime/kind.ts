/**
 * kind clusters for Helm devices (issue 5, item 4): the device suite creates one when `kind`
 * and `helm` are on PATH and skips its Helm checks with the printed reason otherwise. On this
 * machine neither exists (kind's node image cannot be pulled), so only the availability check
 * runs here; the cluster code is the real `kind create/delete cluster` and is exercised wherever
 * kind works.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** kind could not create or delete a cluster; the message carries kind's own output. */
export class KindError extends Error {
  override readonly name = "KindError";
}

export type KindAvailability = { ok: true } | { ok: false; reason: string };

/** Whether a Helm device can be tested here: both `kind` (the cluster) and `helm` (the device's tool) on PATH. */
export function kindAvailable(path: string = process.env.PATH ?? ""): KindAvailability {
  const missing = ["kind", "helm"].filter((b) => !onPath(b, path));
  if (missing.length === 0) return { ok: true };
  return {
    ok: false,
    reason: `${missing.join(" and ")} not on PATH: Helm device checks need a kind cluster (kind) and the helm CLI`,
  };
}

function onPath(binary: string, path: string): boolean {
  return path
    .split(delimiter)
    .filter((d) => d !== "")
    .some((d) => existsSync(join(d, binary)));
}

export interface KindCluster {
  /** kubeconfig file of the cluster (give it to the device as MARGO_CONFORMANCE_KUBECONFIG). */
  readonly kubeconfig: string;
  /** `kind delete cluster`; idempotent. */
  stop(): Promise<void>;
}

/** `kind create cluster --name NAME --kubeconfig WORKDIR/kubeconfig --wait 120s`. */
export async function startKindCluster(opts: {
  name: string;
  workDir: string;
}): Promise<KindCluster> {
  const avail = kindAvailable();
  if (!avail.ok) throw new KindError(avail.reason);
  await mkdir(opts.workDir, { recursive: true });
  const kubeconfig = join(opts.workDir, "kubeconfig");
  const create = await kind([
    "create",
    "cluster",
    "--name",
    opts.name,
    "--kubeconfig",
    kubeconfig,
    "--wait",
    "120s",
  ]);
  if (create.code !== 0) {
    // A half-created cluster (node container up, control plane not) would otherwise linger.
    await kind(["delete", "cluster", "--name", opts.name]);
    throw new KindError(
      `kind create cluster --name ${opts.name} exited ${create.code}: ${create.output.trim()}`,
    );
  }
  let stopped: Promise<void> | undefined;
  return {
    kubeconfig,
    stop() {
      stopped ??= kind(["delete", "cluster", "--name", opts.name, "--kubeconfig", kubeconfig]).then(
        (r) => {
          if (r.code !== 0) {
            throw new KindError(
              `kind delete cluster --name ${opts.name} exited ${r.code}: ${r.output.trim()}`,
            );
          }
        },
      );
      return stopped;
    },
  };
}

function kind(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((res) => {
    const child = spawn("kind", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e) => res({ code: -1, output: e.message }));
    child.on("close", (code) => res({ code, output }));
  });
}
