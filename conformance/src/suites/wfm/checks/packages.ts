/**
 * wfm.deployment checks about how the WFM takes in Application Packages from the registry:
 * item 74 (the WFM validates a Compose archive before it accepts or deploys it) and item 80 (it
 * pulls packages only through the OCI distribution v1.1 endpoints). Both push their own packages
 * under `<registry>/margo-conformance/` next to the suite's fixtures and publish them through the
 * driver; neither judges the ApplicationDeployment itself.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePackageOptions, type InvalidFixture, listFixtures } from "@margo/fixtures";
import { MARGO_APP_DESCRIPTION_MEDIA_TYPE, OciClient, publishPackageDir } from "@margo/proto/oci";
import type { Check, CheckTools } from "../../../core/types.js";
import { type WfmCtx, type WfmDriver, WfmDriverRefused } from "../context.js";
import { judgePulls, type RecordedRequest, startRegistryProxy } from "../registry-proxy.js";
import { registerDevice, uniqueDeviceId, wfmCheck } from "./support.js";

/** A test package could not be built or pushed (environment, never a finding). */
export class TestPackagePushError extends Error {
  override readonly name = "TestPackagePushError";
}

/**
 * Hostile Compose archives the WFM must refuse (item 74): one `../` entry, one symlink leaving
 * the top directory. Each is a broken fixture violating exactly that one archive rule.
 */
export const UNSAFE_ARCHIVE_FIXTURES = ["archive-path-traversal", "archive-escaping-symlink"];

/** App id of the package item 80 is judged with: its own, so no earlier publish could cache it. */
export const PULL_PROBE_APP = "conformance-pull";

const FIXTURE_PREFIX = /oci:\/\/[^/\s]+\/margo-fixtures\/[^/\s]+\//g;

/** `<registry>` of a package reference `<registry>/<repo>:<tag>`, and how to talk to it. */
export function registryOfReference(ref: string): { registry: string; plainHttp: boolean } {
  const registry = ref.split("/")[0];
  if (!registry || !ref.includes("/"))
    throw new TestPackagePushError(`cannot read the registry of ${ref}`);
  return { registry, plainHttp: isLoopbackHost(registry) };
}

/** Loopback host (with or without port): the harness talks plain HTTP there. */
export function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

const pushes = new Map<string, Promise<PushedTestPackage>>();

/** Push once per process and registry (same bytes, same digests); a failed push may be retried. */
function once(key: string, push: () => Promise<PushedTestPackage>): Promise<PushedTestPackage> {
  let p = pushes.get(key);
  if (!p) {
    p = push();
    pushes.set(key, p);
    p.catch(() => pushes.delete(key));
  }
  return p;
}

/** A package the check pushed: where it is and what its manifest names. */
export interface PushedTestPackage {
  /** `<registry>/<repository>:<tag>`. */
  reference: string;
  repository: string;
  tag: string;
  manifestDigest: string;
  descriptionDigest: string;
}

/**
 * Copies a fixture folder, points its component repositories at `margo-conformance/<id>/`,
 * optionally rewrites the description, and publishes it (hostile archives from archive.yaml).
 */
async function pushFolder(
  fixture: InvalidFixture | { name: string; dir: string },
  registry: string,
  plainHttp: boolean,
  appId: string,
  rewrite: (text: string) => string = (s) => s,
): Promise<PushedTestPackage> {
  const dir = await mkdtemp(join(tmpdir(), `margo-conf-${appId}-`));
  try {
    await cp(fixture.dir, dir, { recursive: true });
    const descFile = join(dir, "margo.yaml");
    const text = await readFile(descFile, "utf8");
    await writeFile(
      descFile,
      rewrite(text.replace(FIXTURE_PREFIX, `oci://${registry}/margo-conformance/${appId}/`)),
    );
    const options = "expect" in fixture ? fixturePackageOptions(fixture) : {};
    const pub = await publishPackageDir(new OciClient({ registry, plainHttp }), dir, {
      packageRepo: `margo-conformance/${appId}/package`,
      ...(options.componentArchive ? { componentArchive: options.componentArchive } : {}),
    });
    const desc = pub.pkg.manifest.layers.find(
      (l) => l.mediaType === MARGO_APP_DESCRIPTION_MEDIA_TYPE,
    );
    if (!desc) throw new TestPackagePushError(`package ${appId} has no description layer`);
    return {
      reference: `${registry}/${pub.pkg.repository}:${pub.pkg.tag}`,
      repository: pub.pkg.repository,
      tag: pub.pkg.tag,
      manifestDigest: pub.pkg.digest,
      descriptionDigest: desc.digest,
    };
  } catch (e) {
    if (e instanceof TestPackagePushError) throw e;
    throw new TestPackagePushError(`pushing ${appId} to ${registry}: ${(e as Error).message}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Push one hostile-archive fixture (by name) under `margo-conformance/<name>/`. */
export function pushUnsafePackage(
  name: string,
  registry: string,
  plainHttp: boolean,
): Promise<PushedTestPackage> {
  const f = listFixtures().invalid.find((x) => x.name === name);
  if (!f?.archive) throw new TestPackagePushError(`no hostile-archive fixture named ${name}`);
  return once(`${registry} ${name}`, () => pushFolder(f, registry, plainHttp, name));
}

/** Push compose-single renamed to PULL_PROBE_APP (a package no other check publishes). */
export function pushPullProbe(registry: string, plainHttp: boolean): Promise<PushedTestPackage> {
  const f = listFixtures().valid.find((x) => x.name === "compose-single");
  if (!f) throw new TestPackagePushError("fixture compose-single missing");
  return once(`${registry} ${PULL_PROBE_APP}`, () =>
    pushFolder(f, registry, plainHttp, PULL_PROBE_APP, (text) =>
      text
        .replace(/^id: .*$/m, `id: ${PULL_PROBE_APP}`)
        .replace(/^(\s+id: )compose-single-compose$/m, `$1${PULL_PROBE_APP}-compose`),
    ),
  );
}

/** What happened to one unsafe package: refused (where), or accepted all the way to a deployment. */
export type UnsafeOutcome =
  | { fixture: string; refusedAt: "publish" | "deploy"; message: string }
  | { fixture: string; deployedAs: string };

/**
 * tryUnsafe publishes an unsafe package and, if the WFM took it, deploys it to a fresh device:
 * a WFM may validate at either step, but not at neither. Only WfmDriverRefused counts as a
 * refusal; anything else thrown is the environment and propagates (error, not a verdict).
 */
export async function tryUnsafe(
  ctx: WfmCtx,
  t: CheckTools,
  fixture: string,
  reference: string,
  plainHttp: boolean,
): Promise<UnsafeOutcome> {
  const refused = (e: unknown): e is WfmDriverRefused => e instanceof WfmDriverRefused;
  let published: Awaited<ReturnType<WfmDriver["publish"]>>;
  try {
    published = await ctx.driver.publish(reference, plainHttp);
  } catch (e) {
    if (!refused(e)) throw e;
    return { fixture, refusedAt: "publish", message: e.message };
  }
  t.note(
    `${fixture}: publish accepted (${published.applicationId} ${published.version}); deploying`,
  );
  const client = ctx.clients[0];
  const deviceId = uniqueDeviceId("unsafe");
  await registerDevice(t, client, deviceId);
  try {
    const { deploymentId } = await ctx.driver.deploy({
      applicationId: published.applicationId,
      version: published.version,
      clientId: client.clientId,
      deviceId,
      ...(published.vendorReference ? { vendorReference: published.vendorReference } : {}),
    });
    return { fixture, deployedAs: deploymentId };
  } catch (e) {
    if (!refused(e)) throw e;
    return { fixture, refusedAt: "deploy", message: e.message };
  }
}

function ruleOf(fixture: string): string {
  const f = listFixtures().invalid.find((x) => x.name === fixture);
  return f ? `${f.expect.rule}: ${f.expect.why.trim()}` : fixture;
}

const unsafeArchiveRefused = wfmCheck({
  id: "wfm.deployment.unsafe-archive-refused",
  title: "A package whose Compose archive is unsafe is refused at publish or deploy",
  requirements: ["wfm-074"],
  level: "MUST",
  timeoutMs: 60_000,
  async run(ctx: WfmCtx, t: CheckTools) {
    // Positive control: the WFM publishes safe packages from this registry, so a refusal below
    // is about the archive, not an unreachable registry.
    const apps = await ctx.apps(t);
    const { registry, plainHttp } = registryOfReference(apps.single.ociReference);
    const outcomes: UnsafeOutcome[] = [];
    for (const name of UNSAFE_ARCHIVE_FIXTURES) {
      const pkg = await pushUnsafePackage(name, registry, plainHttp);
      const o = await tryUnsafe(ctx, t, name, pkg.reference, plainHttp);
      if ("refusedAt" in o) t.note(`${name}: refused at ${o.refusedAt}: ${o.message}`);
      outcomes.push(o);
    }
    const deployed = outcomes.filter((o) => "deployedAs" in o);
    t.expect(
      deployed.length === 0,
      `item 74 (wfm-074): the WFM must validate a Compose archive before it deploys it, but it published and deployed ${deployed
        .map(
          (o) =>
            `${o.fixture} (deployment ${"deployedAs" in o ? o.deployedAs : ""}; ${ruleOf(o.fixture)})`,
        )
        .join(
          "; ",
        )}. Expected the driver's Publish or Deploy to be refused (one top dir, compose.yaml, no escaping links, no absolute paths, no ../).`,
      outcomes,
    );
  },
});

/** The Management Interface URL names a loopback host (the proxy is reachable from there). */
function onThisHost(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    return isLoopbackHost(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}

function listRequests(log: readonly RecordedRequest[]): string {
  return log.map((r) => `${r.method} ${r.path}${r.status ? ` -> ${r.status}` : ""}`).join("\n");
}

const pullsThroughDistributionApi = wfmCheck({
  id: "wfm.deployment.pulls-through-distribution-api",
  title: "The WFM pulls a package only through OCI distribution v1.1 endpoints",
  requirements: ["wfm-080"],
  level: "MUST",
  timeoutMs: 60_000,
  async run(ctx: WfmCtx, t: CheckTools) {
    if (!onThisHost(ctx.info.endpoint))
      t.skip(
        `the WFM (${ctx.info.endpoint ?? "no endpoint"}) is not on this host: it cannot reach the harness's recording registry proxy, which listens on 127.0.0.1 only`,
      );
    const apps = await ctx.apps(t);
    const { registry, plainHttp } = registryOfReference(apps.single.ociReference);
    const pkg = await pushPullProbe(registry, plainHttp);
    const proxy = await startRegistryProxy({ upstream: registry, upstreamTls: !plainHttp });
    try {
      const reference = `${proxy.address}/${pkg.repository}:${pkg.tag}`;
      t.note(`recording registry proxy ${proxy.address} -> ${registry}; publishing ${reference}`);
      let publishError: unknown;
      let published: Awaited<ReturnType<WfmDriver["publish"]>> | undefined;
      try {
        published = await ctx.driver.publish(reference, true);
      } catch (e) {
        publishError = e;
      }
      const want = {
        repository: pkg.repository,
        manifestRefs: [pkg.tag, pkg.manifestDigest],
        descriptionDigest: pkg.descriptionDigest,
      };
      let judged = judgePulls(proxy.requests(), want);
      if (publishError !== undefined && proxy.requests().length === 0)
        t.skip(
          `the WFM sent no request to the registry proxy at ${proxy.address} and publish failed (${(publishError as Error).message}): it cannot reach 127.0.0.1 from where it runs`,
        );
      if (published && judged.missing.length > 0 && judged.offending.length === 0) {
        // A WFM may pull lazily, when a deployment first needs the package: give it one.
        const client = ctx.clients[0];
        const deviceId = uniqueDeviceId("pull");
        await registerDevice(t, client, deviceId);
        await ctx.driver.deploy({
          applicationId: published.applicationId,
          version: published.version,
          clientId: client.clientId,
          deviceId,
          ...(published.vendorReference ? { vendorReference: published.vendorReference } : {}),
        });
        judged = judgePulls(proxy.requests(), want);
      }
      const log = proxy.requests();
      t.note(`requests through the proxy:\n${listRequests(log) || "(none)"}`);
      t.expect(
        judged.offending.length === 0,
        `item 80 (wfm-080): the WFM must pull packages only through OCI distribution v1.1 endpoints (GET/HEAD /v2/, /v2/<name>/tags/list, /v2/<name>/manifests/<ref>, /v2/<name>/blobs/<digest>), but it sent: ${listRequests(judged.offending).replace(/\n/g, "; ")}`,
        judged.offending,
      );
      if (publishError !== undefined) throw publishError;
      t.expect(
        judged.missing.length === 0,
        `item 80 (wfm-080): the WFM published ${reference} but did not pull it through the registry it was given: missing ${judged.missing.join(", ")} (it may have fetched the package another way)`,
        { log },
      );
    } finally {
      await proxy.close();
    }
  },
});

/** Item 74 (WFM side) and item 80, in run order. */
export const packageChecks: readonly Check<WfmCtx>[] = [
  unsafeArchiveRefused,
  pullsThroughDistributionApi,
];
