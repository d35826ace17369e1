/**
 * The WFM-under-test suite: the harness plays devices (admitted WFM clients) on the Management
 * Interface over real mTLS and drives the WFM's northbound side through the configured WfmDriver.
 */
import type { WfmSuiteConfig } from "../../config/types.js";
import type { Check, CheckTools, Suite, SuiteIo, SuiteSession } from "../../core/types.js";
import { AppCatalog } from "./apps.js";
import { wfmChecks } from "./checks/index.js";
import type { Credentials, WfmClient, WfmCtx, WireClient } from "./context.js";
import { EvidenceRecorder, openDriver } from "./drivers/index.js";
import { loadAnchors } from "./identity/anchors.js";
import { domainMinter, foreignMinter } from "./identity/minter.js";
import { provisionClients, runTemplate } from "./identity/provision.js";
import { createWireClient } from "./wire/wire-client.js";

/**
 * Families whose checks need a WFM without leftovers of earlier checks (shared clients'
 * manifests, reported statuses). The others (transport, identity, errors, trust) judge
 * connections and answers that no stored state changes, so they skip the reset.
 */
export const RESET_FAMILIES: ReadonlySet<string> = new Set([
  "wfm.capabilities",
  "wfm.manifest",
  "wfm.artifacts",
  "wfm.deployment",
  "wfm.status",
  "wfm.isolation",
]);

/** The registry the harness pushes its packages to: the runner may pass the top-level section. */
function registryOf(config: WfmSuiteConfig): { address: string; plainHttp: boolean } {
  const r = (config as WfmSuiteConfig & { registry?: { address?: string; plainHttp?: boolean } })
    .registry;
  return {
    address: r?.address ?? process.env.MARGO_REGISTRY ?? "127.0.0.1:5000",
    plainHttp: r?.plainHttp ?? true,
  };
}

/** spiffe://<td>/margo/wfm/<id> -> td, id (the WFM's SPIFFE ID names both). */
export function parseWfmSpiffeId(spiffeId: string): { trustDomain: string; wfmId: string } {
  const m = /^spiffe:\/\/([^/]+)\/margo\/wfm\/([^/]+)$/.exec(spiffeId);
  if (!m?.[1] || !m[2])
    throw new Error(`wfm.spiffeId ${spiffeId} is not spiffe://<trust-domain>/margo/wfm/<wfm-id>`);
  return { trustDomain: m[1], wfmId: m[2] };
}

async function open(config: WfmSuiteConfig, io: SuiteIo): Promise<SuiteSession<WfmCtx>> {
  const { trustDomain, wfmId } = parseWfmSpiffeId(config.spiffeId);
  const anchors = await loadAnchors(config.trustBundleFile);
  const recorder = new EvidenceRecorder();
  const opened = await openDriver(config.driver, config.spiffeId, recorder);
  const wires: WireClient[] = [];
  try {
    const driver = opened.driver;
    const about = await driver.info();
    io.log(
      `WFM under test: ${about.vendor} ${about.product} ${about.version} (${about.margoVersion})`,
    );
    const connect = (creds: Credentials | null, actor: string): WireClient => {
      const w = createWireClient({
        baseUrl: config.url,
        credentials: creds,
        actor,
        anchors,
        wfmSpiffeId: config.spiffeId,
        trustDomain,
      });
      wires.push(w);
      return w;
    };
    const [provisioned, foreign, domain] = await Promise.all([
      provisionClients(config.clients, io.workDir, io.log),
      foreignMinter(),
      config.ca ? domainMinter(trustDomain, config.ca, anchors) : Promise.resolve(undefined),
    ]);
    const clients = provisioned.map(
      (p): WfmClient => ({
        clientId: p.clientId,
        credentials: p.credentials,
        wire: connect(p.credentials, `client ${p.clientId}`),
      }),
    );
    const [a, b, ...rest] = clients;
    if (!a || !b) throw new Error("the WFM suite needs two admitted clients");
    io.log(`clients: ${clients.map((c) => c.clientId).join(", ")}`);
    const catalog = new AppCatalog(
      driver,
      registryOf(config).address,
      registryOf(config).plainHttp,
    );
    const retireCommand = config.clients.retireCommand;
    const ctx: WfmCtx = {
      info: {
        vendor: about.vendor,
        product: about.product,
        version: about.version,
        margoVersion: about.margoVersion,
        features: about.features,
        endpoint: config.url,
      },
      driver,
      clients: [a, b, ...rest],
      connect,
      ...(domain ? { domainMinter: domain } : {}),
      foreignMinter: foreign,
      ...(retireCommand
        ? {
            retire: async (clientId: string) => {
              await runTemplate(retireCommand, { clientId }, io.log);
            },
          }
        : {}),
      apps: (_t: CheckTools) => catalog.get(),
      trustDomain,
      wfmId,
    };
    return {
      ctx,
      implementation: ctx.info,
      async beforeEach(check: Check<WfmCtx>, t: CheckTools) {
        recorder.bind((e) => t.evidence(e));
        if (RESET_FAMILIES.has(check.family)) {
          await driver.reset();
          catalog.invalidate();
        }
      },
      async close() {
        recorder.bind(undefined);
        for (const w of wires) w.close();
        opened.close();
      },
    };
  } catch (e) {
    for (const w of wires) w.close();
    opened.close();
    throw e;
  }
}

export const wfmSuite: Suite<WfmCtx, WfmSuiteConfig> = {
  name: "wfm",
  checks: wfmChecks,
  open,
};
