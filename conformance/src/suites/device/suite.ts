/**
 * The device-under-test suite: the harness runs its own instrumented WFM (mutual TLS, its own
 * trust domain, fault injection), provisions the device through DeviceDriverService, and judges
 * what the device did on the wire and what really runs on a fresh Compose host.
 */
import { join } from "node:path";
import type { DeviceSuiteConfig } from "../../config/types.js";
import { createCheckTools } from "../../core/tools.js";
import {
  type Check,
  type CheckTools,
  type Suite,
  type SuiteIo,
  type SuiteSession,
  SuiteUnavailable,
} from "../../core/types.js";
import { type ComposeHost, startComposeHost } from "../../runtime/compose-host.js";
import { kindAvailable, startKindCluster } from "../../runtime/kind.js";
import { deviceChecks } from "./checks/index.js";
import { defaultComponentImage, publishTestComponents } from "./components.js";
import type { DeviceCtx, TestComponents } from "./context.js";
import { DeviceDriverClient, driverDevice, implementationInfo } from "./driver.js";
import { observedEngine } from "./engine.js";
import { type RunningInstrumentedWfm, startInstrumentedWfm } from "./instrumented-wfm/index.js";
import { type LaunchedDevice, launchDevice, readDriverToken } from "./launcher.js";

/** Feature a check names when it needs the harness to restart the device process. */
export const FEATURE_RESTART = "restart";

/** How long a configured (not launched) device's driver may take to answer Info. */
const DRIVER_READY_MS = 10_000;

/** The registry the harness pushes components to: the runner may pass the top-level section. */
function registryOf(config: DeviceSuiteConfig): { address: string; plainHttp: boolean } {
  const r = (config as DeviceSuiteConfig & { registry?: { address?: string; plainHttp?: boolean } })
    .registry;
  return {
    address: r?.address ?? process.env.MARGO_REGISTRY ?? "127.0.0.1:5000",
    plainHttp: r?.plainHttp ?? true,
  };
}

/** Components left unset when the device cannot run Compose: checks using them skip by feature. */
const NO_COMPONENTS: TestComponents = {
  running: { repository: "", revision: "" },
  exitsNonZero: { repository: "", revision: "" },
  neverReady: { repository: "", revision: "" },
  unsafeArchive: { repository: "", revision: "" },
};

async function open(config: DeviceSuiteConfig, io: SuiteIo): Promise<SuiteSession<DeviceCtx>> {
  const cleanups: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
  };
  try {
    const registry = registryOf(config);
    const image = defaultComponentImage(registry.address);

    let host: ComposeHost | undefined;
    let dockerHost = config.composeHost.dockerHost;
    if (config.composeHost.enabled) {
      io.log("starting a fresh Compose host");
      const preload = [...new Set([...config.composeHost.preloadImages, image])];
      host = await startComposeHost({
        workDir: join(io.workDir, "compose-host"),
        index: config.composeHost.subnetIndex ?? 1,
        preloadImages: preload,
        sourceDockerHost: config.composeHost.sourceDockerHost,
        log: io.log,
      });
      const h = host;
      cleanups.push(() => h.stop());
      dockerHost = host.dockerHost;
    }

    // A Helm device needs a cluster before it starts (its kubeconfig goes into the launch env).
    let kubeconfig: string | undefined;
    let helmUnavailable: string | undefined;
    const kind = kindAvailable();
    if (!config.helm.enabled) helmUnavailable = "device.helm.enabled is false: no kind cluster";
    else if (!kind.ok) helmUnavailable = kind.reason;
    else {
      io.log("starting a kind cluster for Helm deployments");
      const cluster = await startKindCluster({
        name: `margo-conf-${process.pid}`,
        workDir: join(io.workDir, "kind"),
      });
      cleanups.push(() => cluster.stop());
      kubeconfig = cluster.kubeconfig;
    }

    let launched: LaunchedDevice | undefined;
    if (config.launch) {
      launched = await launchDevice({
        launch: config.launch,
        workDir: io.workDir,
        ...(dockerHost ? { dockerHost } : {}),
        ...(kubeconfig ? { kubeconfig } : {}),
        log: io.log,
      });
      const l = launched;
      cleanups.push(() => l.close());
    }
    const token = await readDriverToken(config.driver, io.workDir);
    const addressNow = () => launched?.address ?? config.driver.address ?? "";
    if (!addressNow()) {
      // Misconfiguration is an error, never a skip: a run must not look conformant by judging nothing.
      throw new Error("device.driver.address or device.launch must be configured");
    }
    // The client follows the launched process's address: a restart may bind another port.
    let client = new DeviceDriverClient({ address: addressNow(), token });
    cleanups.push(async () => client.close());
    const currentClient = () => {
      if (client.opts.address !== addressNow()) {
        client.close();
        client = new DeviceDriverClient({ address: addressNow(), token });
      }
      return client;
    };
    let about = await currentClient().waitReady(config.launch?.readyTimeoutMs ?? DRIVER_READY_MS);

    const wfm: RunningInstrumentedWfm = await startInstrumentedWfm({
      trustDomain: config.trustDomain,
      wfmId: config.wfmId,
    });
    cleanups.push(() => wfm.close());
    io.log(`instrumented WFM at ${wfm.url} (${wfm.spiffeId}), bundle at ${wfm.bundleUrl}`);

    const device = driverDevice({
      client: currentClient,
      wfm,
      pollPeriodMs: config.pollPeriodMs,
      ...(launched
        ? {
            restartProcess: async () => {
              await (launched as LaunchedDevice).restart();
              await currentClient().waitReady(config.launch?.readyTimeoutMs ?? DRIVER_READY_MS);
            },
          }
        : {}),
    });
    if (about.supportedDeploymentTypes.length === 0) {
      // An unprovisioned device may not know its runtimes yet: provision it once, then ask again.
      io.log("Info lists no deployment types before provisioning; configuring the device once");
      const boot = createCheckTools({ signal: io.signal });
      await device.configure(boot.tools);
      // It may still be probing its runtimes right after the first Configure.
      const deadline = Date.now() + 10_000;
      do {
        about = await currentClient().info();
        if (about.supportedDeploymentTypes.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < deadline);
    }
    const info = implementationInfo(about, addressNow(), launched ? [FEATURE_RESTART] : []);
    io.log(
      `device under test: ${info.vendor} ${info.product} ${info.version} (${info.margoVersion}); features ${info.features.join(", ")}`,
    );

    const compose = about.supportedDeploymentTypes.includes("compose");
    const helm = about.supportedDeploymentTypes.includes("helm");
    if (!compose && helm && helmUnavailable) {
      throw new SuiteUnavailable(`the device supports only Helm deployments: ${helmUnavailable}`);
    }

    const components = compose
      ? await publishTestComponents({
          registry: registry.address,
          plainHttp: registry.plainHttp,
          image,
        })
      : NO_COMPONENTS;

    const ctx: DeviceCtx = {
      wfm,
      device,
      ...(compose && dockerHost ? { engine: observedEngine(dockerHost) } : {}),
      components,
      info,
    };
    return {
      ctx,
      implementation: info,
      async beforeEach(check: Check<DeviceCtx>, t: CheckTools) {
        if (helmUnavailable && check.features?.includes("helm")) t.skip(helmUnavailable);
        await wfm.reset();
        await device.reset(t);
        await device.configure(t);
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

export const deviceSuite: Suite<DeviceCtx, DeviceSuiteConfig> = {
  name: "device",
  checks: deviceChecks,
  open,
};
