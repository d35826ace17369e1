import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { KubeConfig } from "@kubernetes/client-node";
import type { AgentLog } from "../../log.js";
import { runCli } from "../compose/compose-cli.js";
import { pullHelmChartBytes } from "../oci-component.js";
import type {
  ApplyOutcome,
  ComponentRef,
  ComponentSpec,
  ObservedComponent,
  Provider,
  ProviderProbe,
  RemoveOutcome,
} from "../provider.js";
import {
  HELM_LABEL,
  helmReleaseName,
  helmUninstallArgs,
  helmUpgradeArgs,
  labelValue,
  SPEC_HASH_PREFIX,
} from "./helm-args.js";
import { writePostRenderer } from "./otel-post-renderer.js";

export interface HelmProviderOptions {
  deviceId: string;
  helmBinary: string;
  /** Unset: the default kubeconfig resolution ($KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string;
  workDir: string;
  plainHttpRegistries: string[];
  log: AgentLog;
}

type K8s = typeof import("@kubernetes/client-node");

function lastLines(s: string, n = 6): string {
  return s.trim().split("\n").slice(-n).join("\n");
}

/**
 * HelmProvider installs Helm components with the `helm` CLI and reads their state through the
 * Kubernetes API. `@kubernetes/client-node` is imported on first use only: it is large, and a
 * Compose-only device must not carry it in its idle memory.
 *
 * Item 89: the OTel variables (`injectedEnv`) reach every container and init container of the
 * chart's workloads through a Helm post-renderer (otel-post-renderer.ts), since a chart has no
 * generic value for container environment. A variable the chart sets itself is kept.
 */
export class HelmProvider implements Provider {
  readonly type = "helm" as const;
  private k8s: { mod: K8s; kc: KubeConfig } | undefined;

  constructor(private readonly opts: HelmProviderOptions) {}

  private async kube(): Promise<{ mod: K8s; kc: KubeConfig }> {
    if (this.k8s) return this.k8s;
    const mod = await import("@kubernetes/client-node");
    const kc = new mod.KubeConfig();
    if (this.opts.kubeconfig) kc.loadFromFile(this.opts.kubeconfig);
    else kc.loadFromDefault();
    this.k8s = { mod, kc };
    return this.k8s;
  }

  private helmEnv(): NodeJS.ProcessEnv {
    return this.opts.kubeconfig
      ? { ...process.env, KUBECONFIG: this.opts.kubeconfig }
      : process.env;
  }

  async probe(): Promise<ProviderProbe> {
    const v = await runCli([this.opts.helmBinary, "version", "--short"], {
      env: this.helmEnv(),
      timeoutMs: 15_000,
    });
    if (v.code !== 0) {
      return {
        available: false,
        reason: `${this.opts.helmBinary} not usable: ${lastLines(v.stderr, 1) || `exit ${v.code}`}`,
      };
    }
    try {
      const { mod, kc } = await this.kube();
      const info = await kc.makeApiClient(mod.VersionApi).getCode();
      return {
        available: true,
        version: `helm ${v.stdout.trim()}, kubernetes ${info.gitVersion}`,
      };
    } catch (e) {
      return { available: false, reason: `kubernetes API unreachable: ${(e as Error).message}` };
    }
  }

  async apply(spec: ComponentSpec, signal: AbortSignal): Promise<ApplyOutcome> {
    const release = helmReleaseName(spec);
    const deadline = Date.now() + spec.timeoutMs;
    let pulled: Awaited<ReturnType<typeof pullHelmChartBytes>>;
    try {
      // The component's timeout covers the pull too.
      pulled = await pullHelmChartBytes(
        spec.repository,
        spec.revision,
        this.opts.plainHttpRegistries,
        AbortSignal.any([signal, AbortSignal.timeout(spec.timeoutMs)]),
      );
    } catch (e) {
      if (signal.aborted || (e as Error)?.name !== "TimeoutError") throw e;
      return {
        state: "failed",
        error: { code: "TIMEOUT", message: `helm ${release}: pulling the chart did not finish` },
      };
    }
    if (!pulled.ok) return { state: "failed", error: pulled.error };
    const dir = join(this.opts.workDir, release);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const chart = join(dir, `chart-${randomBytes(4).toString("hex")}.tgz`);
    try {
      await writeFile(chart, pulled.bytes, { mode: 0o600 });
      // Written per apply: the variables are baked into the script, and they may have changed.
      const postRenderer =
        Object.keys(spec.injectedEnv).length > 0
          ? await writePostRenderer(dir, spec.injectedEnv)
          : undefined;
      const args = helmUpgradeArgs(this.opts.deviceId, spec, chart, {
        ...(postRenderer !== undefined ? { postRenderer } : {}),
      });
      // A little beyond helm's own --timeout, so helm reports its timeout itself when it can.
      const r = await runCli([this.opts.helmBinary, ...args], {
        env: this.helmEnv(),
        signal,
        timeoutMs: Math.max(1, deadline - Date.now()) + 5_000,
      });
      if (r.timedOut || /timed out waiting|context deadline exceeded/i.test(r.stderr)) {
        return {
          state: "failed",
          error: { code: "TIMEOUT", message: `helm ${release}: ${lastLines(r.stderr, 3)}` },
        };
      }
      if (r.code !== 0) {
        return {
          state: "failed",
          error: { code: "APPLY_FAILED", message: `helm ${release}: ${lastLines(r.stderr)}` },
        };
      }
      this.opts.log({ level: "info", msg: "helm release applied", release });
      return { state: "installed" };
    } finally {
      await rm(chart, { force: true });
    }
  }

  async observe(ref: ComponentRef): Promise<ObservedComponent> {
    const release = helmReleaseName(ref);
    const { mod, kc } = await this.kube();
    const core = kc.makeApiClient(mod.CoreV1Api);
    const apps = kc.makeApiClient(mod.AppsV1Api);
    const secrets = await core.listNamespacedSecret({
      namespace: ref.namespace,
      labelSelector: `owner=helm,name=${release},status=deployed`,
    });
    const secret = secrets.items[0];
    if (!secret) return { health: "absent", detail: `release ${release}: not deployed` };
    const specHash = specHashOf(secret.data?.release);
    const selector = `app.kubernetes.io/instance=${release}`;
    const [deployments, pods] = await Promise.all([
      apps.listNamespacedDeployment({ namespace: ref.namespace, labelSelector: selector }),
      core.listNamespacedPod({ namespace: ref.namespace, labelSelector: selector }),
    ]);
    const problems: string[] = [];
    let starting = false;
    for (const d of deployments.items) {
      const want = d.spec?.replicas ?? 1;
      const ready = d.status?.readyReplicas ?? 0;
      if (ready < want) {
        const name = d.metadata?.name ?? "?";
        // A rollout in progress is "starting"; fewer ready than wanted otherwise is drift.
        if ((d.status?.updatedReplicas ?? 0) < want) starting = true;
        else problems.push(`deployment ${name}: ${ready}/${want} ready`);
      }
    }
    for (const p of pods.items) {
      const phase = p.status?.phase;
      if (phase === "Failed") problems.push(`pod ${p.metadata?.name}: Failed`);
      if (phase === "Pending") starting = true;
    }
    const detail = `release ${release}: ${deployments.items.length} deployment(s), ${pods.items.length} pod(s)${
      problems.length ? `; ${problems.join(", ")}` : ""
    }`;
    return {
      health: problems.length > 0 ? "degraded" : starting ? "starting" : "running",
      detail,
      ...(specHash !== undefined ? { specHash } : {}),
    };
  }

  async remove(ref: ComponentRef, signal: AbortSignal): Promise<RemoveOutcome> {
    const release = helmReleaseName(ref);
    const r = await runCli([this.opts.helmBinary, ...helmUninstallArgs(ref)], {
      env: this.helmEnv(),
      signal,
      timeoutMs: 130_000,
    });
    if (r.code !== 0 && !/not found/i.test(r.stderr)) {
      return {
        state: "failed",
        error: { code: "REMOVE_FAILED", message: `helm ${release}: ${lastLines(r.stderr, 3)}` },
      };
    }
    await rm(join(this.opts.workDir, release), { recursive: true, force: true });
    return { state: "removed" };
  }

  async listInstalled(): Promise<ComponentRef[]> {
    const { mod, kc } = await this.kube();
    const core = kc.makeApiClient(mod.CoreV1Api);
    const list = await core.listSecretForAllNamespaces({
      labelSelector: `owner=helm,status=deployed,${HELM_LABEL.deviceId}=${labelValue(this.opts.deviceId)}`,
    });
    const out: ComponentRef[] = [];
    for (const s of list.items) {
      const l = s.metadata?.labels ?? {};
      const deploymentId = l[HELM_LABEL.deploymentId];
      const componentName = l[HELM_LABEL.component];
      if (!deploymentId || !componentName) continue;
      out.push({
        deploymentId,
        componentName,
        deploymentName: "",
        namespace: s.metadata?.namespace ?? "",
      });
    }
    return out;
  }
}

/**
 * Helm stores a release as base64(gzip(JSON)) inside the secret's (itself base64) data; the spec
 * hash is in its description, where apply put it.
 */
function specHashOf(data: string | undefined): string | undefined {
  if (!data) return undefined;
  try {
    const inner = Buffer.from(Buffer.from(data, "base64").toString("utf8"), "base64");
    const json = JSON.parse(gunzipSync(inner).toString("utf8")) as {
      info?: { description?: string };
    };
    const d = json.info?.description ?? "";
    return d.startsWith(SPEC_HASH_PREFIX) ? d.slice(SPEC_HASH_PREFIX.length) : undefined;
  } catch {
    return undefined;
  }
}
