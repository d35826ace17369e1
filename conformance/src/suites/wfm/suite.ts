/**
 * The WFM-under-test suite: the harness plays devices (admitted WFM clients) on the Management
 * Interface over real mTLS and drives the WFM's northbound side through the configured WfmDriver.
 */
import { MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import type { WfmSuiteConfig } from "../../config/types.js";
import type { Check, CheckTools, Suite, SuiteIo, SuiteSession } from "../../core/types.js";
import { AppCatalog, pushFixture } from "./apps.js";
import { wfmChecks } from "./checks/index.js";
import type { Credentials, WfmClient, WfmCtx, WireClient } from "./context.js";
import { EvidenceRecorder, openDriver } from "./drivers/index.js";
import { loadAnchors } from "./identity/anchors.js";
import { type RetiredClient, registerExtras } from "./identity/extras.js";
import { domainMinter, foreignMinter } from "./identity/minter.js";
import { admitOne, provisionClients, runTemplate } from "./identity/provision.js";
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

/** CheckTools for requests made while the suite opens: no check to hold evidence yet. */
function toolsForOpen(signal: AbortSignal): CheckTools {
  const fail = (message: string): never => {
    throw new Error(`while opening the WFM suite: ${message}`);
  };
  return {
    signal,
    evidence: () => {},
    note: () => {},
    fail,
    skip: fail,
    expect(cond, message) {
      if (!cond) fail(message);
    },
    expectEqual(actual, expected, what) {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) fail(what);
    },
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
    const connect = (creds: Credentials | null, actor: string, origin?: string): WireClient => {
      const w = createWireClient({
        baseUrl: origin ?? config.url,
        credentials: creds,
        actor,
        anchors,
        ...(origin === undefined ? { wfmSpiffeId: config.spiffeId } : {}),
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
    const setupTools = toolsForOpen(io.signal);
    const clients = await Promise.all(
      provisioned.map(async (p): Promise<WfmClient> => {
        const wire = connect(p.credentials, `client ${p.clientId}`);
        // Item 42 ("starts at 1") can be judged only on the very first manifest of a client
        // admitted in this run, so read it now, before any check touches the client.
        const firstManifest = p.fresh
          ? await wire.request(setupTools, {
              method: "GET",
              path: "/api/v1/deployments",
              headers: { accept: MANIFEST_MEDIA_TYPE },
            })
          : undefined;
        return {
          clientId: p.clientId,
          credentials: p.credentials,
          wire,
          ...(firstManifest ? { firstManifest } : {}),
        };
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
      connect: (creds, actor) => connect(creds, actor),
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
    const provisionCommand = config.clients.provisionCommand;
    const runId = /^conf-([0-9a-f]+)-a$/.exec(a.clientId)?.[1];
    const spares = new Map<string, Promise<WfmClient>>();
    // Memoized per suffix: a check asking twice (or the background start below) admits once.
    const admitClient =
      provisionCommand && runId
        ? (suffix: string): Promise<WfmClient> => {
            let p = spares.get(suffix);
            if (!p) {
              p = admitOne(provisionCommand, `conf-${runId}-${suffix}`, io.workDir, io.log).then(
                (c) => ({
                  clientId: c.clientId,
                  credentials: c.credentials,
                  wire: connect(c.credentials, `client ${c.clientId}`),
                }),
              );
              spares.set(suffix, p);
            }
            return p;
          }
        : undefined;
    let retired: Promise<RetiredClient> | undefined;
    const retiredClient =
      admitClient && retireCommand
        ? (): Promise<RetiredClient> => {
            retired ??= (async () => {
              const c = await admitClient("retired");
              // Served before retirement, else a later denial would prove nothing.
              const before = await c.wire.request(setupTools, {
                method: "GET",
                path: "/api/v1/deployments",
                headers: { accept: MANIFEST_MEDIA_TYPE },
                fresh: true,
              });
              if (before.status !== 200)
                throw new Error(
                  `setup: freshly admitted client ${c.clientId} was not served (HTTP ${before.status})`,
                );
              await runTemplate(retireCommand, { clientId: c.clientId }, io.log);
              return { client: c, servedBefore: before.status };
            })();
            return retired;
          }
        : undefined;
    // Admitting and retiring cost operator commands (seconds each): start them now, in the
    // background, so the checks that need them find them ready instead of waiting in turn.
    for (const p of [retiredClient?.(), admitClient?.("rl")]) p?.catch(() => {});
    // Same for the fixture pushes every deploying check needs.
    for (const name of ["compose-single", "compose-multi"])
      pushFixture(name, registryOf(config).address, registryOf(config).plainHttp).catch(() => {});
    registerExtras(ctx, {
      anchors,
      ...(config.bundleUrl ? { bundleUrl: config.bundleUrl } : {}),
      ...(config.discoveryUrl ? { discoveryUrl: config.discoveryUrl } : {}),
      connectOrigin: (origin, actor) => connect(null, actor, origin),
      ...(admitClient ? { admitClient } : {}),
      ...(retiredClient ? { retiredClient } : {}),
      ...(domain ? { shortLivedSvid: domain.shortLivedSvid } : {}),
    });
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
