/**
 * Shared helpers of the WFM checks H4 owns (capabilities, manifest, artifacts, deployment
 * content, status). They keep the checks short and uniform: one way to build a capabilities body
 * from the OpenAPI schema, one way to read a problem `type` leniently (only wfm.errors judges the
 * problem's shape), one way to read a manifest without losing uint64 precision, and one way to
 * hash exact bytes. Nothing here judges; checks decide what is a fail.
 */
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listFixtures } from "@margo/fixtures";
import { OciClient, publishPackageDir } from "@margo/proto/oci";
import { validatePackageDir } from "@margo/proto/package";
import {
  type JsonObject,
  type JsonValue,
  MANIFEST_MEDIA_TYPE,
  parseJson,
  parseYaml,
} from "@margo/proto/wire";
import { parse as parseYamlText, stringify as stringifyYamlText } from "yaml";
import type { Check, CheckTools, Level } from "../../../core/types.js";
import type { WfmClient, WfmCtx, WireClient, WireResponse } from "../context.js";

/** Margo problem type namespace (digest 9); checks compare the fragment only. */
export const PROBLEM_NS = "https://docs.margo.org/specification/problem-types";

/** Definition of a WFM check without the fields derived from its id. */
export interface WfmCheckDef {
  id: string;
  title: string;
  requirements: readonly string[];
  level: Level;
  features?: readonly string[];
  timeoutMs?: number;
  run(ctx: WfmCtx, t: CheckTools): Promise<void>;
}

/**
 * wfmCheck fills suite and family from the id (`wfm.<area>.<what>` -> family `wfm.<area>`), so a
 * check cannot land in a family its id does not name (the mutant matrix relies on it).
 */
export function wfmCheck(def: WfmCheckDef): Check<WfmCtx> {
  const parts = def.id.split(".");
  if (parts.length < 3 || parts[0] !== "wfm") throw new Error(`bad WFM check id ${def.id}`);
  return { ...def, suite: "wfm", family: `${parts[0]}.${parts[1]}` };
}

/** A device id no other check (or earlier run) uses: `dev-<short>-<8 hex>`. */
export function uniqueDeviceId(short: string): string {
  return `dev-${short}-${randomBytes(4).toString("hex")}`;
}

/** `sha256:<hex>` of exact bytes (digest 6.2: no re-serialisation, no normalisation). */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** One header as a single string (lower-case name; repeated headers joined with ", "). */
export function header(res: WireResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(", ") : v;
}

/**
 * The problem `type` of an error response, read leniently: whatever the Content-Type, if the body
 * is a JSON object with a string `type` it is returned. The shape itself is wfm.errors' concern.
 */
export function problemType(res: WireResponse): string | undefined {
  const parsed = parseJson(res.body);
  const v = parsed.value;
  if (v === undefined || v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const type = (v as JsonObject).type;
  return typeof type === "string" ? type : undefined;
}

/** The body parsed as JSON (lossless), or undefined when it is not JSON. */
export function parseBody(res: WireResponse): JsonValue | undefined {
  return parseJson(res.body).value;
}

/** True when `type` is the Margo problem type with this fragment (e.g. "device-not-found"). */
export function isMargoType(type: string | undefined, fragment: string): boolean {
  return type === `${PROBLEM_NS}#${fragment}`;
}

/**
 * expectProblem fails unless the response has this status and the Margo problem type with this
 * fragment; the message names the requirement so a vendor knows which rule broke.
 */
export function expectProblem(
  t: CheckTools,
  res: WireResponse,
  status: number,
  fragment: string,
  requirement: string,
): void {
  t.expect(
    res.status === status,
    `expected HTTP ${status} (${requirement}), got ${res.status}${bodyHint(res)}`,
  );
  const type = problemType(res);
  t.expect(
    isMargoType(type, fragment),
    `expected problem type ${PROBLEM_NS}#${fragment} (${requirement}), got ${type === undefined ? "no problem type" : JSON.stringify(type)}`,
  );
}

/** First 200 characters of a body for failure messages. */
export function bodyHint(res: WireResponse): string {
  if (res.body.length === 0) return "";
  const text = res.body.subarray(0, 200).toString("utf8");
  return `: ${text}${res.body.length > 200 ? "..." : ""}`;
}

/** A JSON object member, or undefined when v is not an object. */
export function member(v: JsonValue | undefined, key: string): JsonValue | undefined {
  if (v === undefined || v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  return Object.hasOwn(v, key) ? (v as JsonObject)[key] : undefined;
}

/** Is v a JSON object (not array, not null)? */
export function isObject(v: JsonValue | undefined): v is JsonObject {
  return v !== undefined && v !== null && typeof v === "object" && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/** Options of capabilitiesBody: hosting fields on by default (item 30). */
export interface CapabilitiesOptions {
  /** Leave out every hosting field (a see-thru gateway, item 31). */
  nonHosting?: boolean;
  supportedDeploymentTypes?: string[];
  /** Extra root members (extensions or, for negative checks, unknown properties). */
  extraRoot?: Record<string, unknown>;
  /** Extra members under properties. */
  extraProperties?: Record<string, unknown>;
}

/**
 * capabilitiesBody builds a DeviceCapabilitiesManifest as the rc.3 OpenAPI schema describes it:
 * the four identity fields, and for a hosting device every hosting field (cpus, memory, storage,
 * peripherals, interfaces, otelCollector true, >= 1 runtime, >= 1 deployment type).
 */
export function capabilitiesBody(deviceId: string, opts: CapabilitiesOptions = {}): JsonObject {
  const properties: Record<string, unknown> = {
    id: deviceId,
    vendor: "Margo conformance harness",
    modelNumber: "conformance-1",
    serialNumber: `sn-${deviceId}`,
  };
  if (!opts.nonHosting) {
    Object.assign(properties, {
      cpus: [{ cores: 2, architecture: "amd64" }],
      memory: "2Gi",
      storage: "16Gi",
      peripherals: [{ type: "gpu", manufacturer: "Example", model: "X1" }],
      interfaces: [{ type: "ethernet" }],
      otelCollector: true,
      supportedRuntimes: ["oci"],
      supportedDeploymentTypes: opts.supportedDeploymentTypes ?? ["compose"],
    });
  }
  Object.assign(properties, opts.extraProperties ?? {});
  return {
    properties,
    labels: { "conformance.margo.org/role": "test-device" },
    ...(opts.extraRoot ?? {}),
  } as JsonObject;
}

/** PUT /api/v1/capabilities/{deviceId} with a JSON body (string bodies are sent verbatim). */
export function putCapabilities(
  t: CheckTools,
  wire: WireClient,
  deviceId: string,
  body: unknown,
): Promise<WireResponse> {
  return wire.request(t, {
    method: "PUT",
    path: `/api/v1/capabilities/${deviceId}`,
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** DELETE /api/v1/capabilities/{deviceId}. */
export function deleteCapabilities(
  t: CheckTools,
  wire: WireClient,
  deviceId: string,
): Promise<WireResponse> {
  return wire.request(t, { method: "DELETE", path: `/api/v1/capabilities/${deviceId}` });
}

/**
 * registerDevice PUTs a valid capabilities body and returns once the WFM accepted it (200/201);
 * anything else is not this check's concern, so it is an error (environment), not a fail.
 */
export async function registerDevice(
  t: CheckTools,
  client: WfmClient,
  deviceId: string,
): Promise<void> {
  const res = await putCapabilities(t, client.wire, deviceId, capabilitiesBody(deviceId));
  if (res.status !== 200 && res.status !== 201)
    throw new HarnessSetupError(
      `setup: PUT capabilities for ${deviceId} answered ${res.status}${bodyHint(res)}`,
    );
}

/** A precondition the check needs failed for a reason outside its own concern. */
export class HarnessSetupError extends Error {
  override readonly name = "HarnessSetupError";
}

// ---------------------------------------------------------------------------------------------
// Manifest

/** A state manifest as read from the wire: the exact response and a lossless tree. */
export interface ManifestRead {
  res: WireResponse;
  /** The parsed body (integers beyond 2^53 as bigint). */
  tree: JsonObject;
  /** manifestVersion as a bigint, undefined when it is not an integer. */
  version: bigint | undefined;
  deployments: ManifestDeploymentRef[];
  bundle: JsonValue | undefined;
}

export interface ManifestDeploymentRef {
  deploymentId: string;
  digest: string;
  url: string;
  sizeBytes?: JsonValue;
}

/** The manifestVersion member as bigint, if it is an integer (number or bigint in the tree). */
export function versionOf(v: JsonValue | undefined): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

/**
 * getManifest GETs the caller's state manifest (with Accept unless told otherwise) and reads it.
 * A status other than 200 or an unreadable body is a fail of the given requirement: every check
 * using it needs a manifest to judge anything.
 */
export async function getManifest(
  t: CheckTools,
  wire: WireClient,
  opts: { headers?: Record<string, string>; requirement?: string } = {},
): Promise<ManifestRead> {
  const res = await wire.request(t, {
    method: "GET",
    path: "/api/v1/deployments",
    headers: opts.headers ?? { accept: MANIFEST_MEDIA_TYPE },
  });
  const req = opts.requirement ?? "wfm-037";
  t.expect(
    res.status === 200,
    `GET /api/v1/deployments: expected 200 (${req}), got ${res.status}${bodyHint(res)}`,
  );
  return readManifest(t, res, req);
}

/** Reads a 200 manifest response body; unreadable JSON or a non-object body fails `requirement`. */
export function readManifest(t: CheckTools, res: WireResponse, requirement: string): ManifestRead {
  const parsed = parseJson(res.body);
  t.expect(
    isObject(parsed.value),
    `the state manifest body is not a JSON object (${requirement})`,
    parsed.problems,
  );
  const tree = parsed.value as JsonObject;
  const list = member(tree, "deployments");
  const deployments: ManifestDeploymentRef[] = [];
  if (Array.isArray(list)) {
    for (const d of list) {
      const deploymentId = member(d, "deploymentId");
      const digest = member(d, "digest");
      const url = member(d, "url");
      if (typeof deploymentId === "string" && typeof digest === "string" && typeof url === "string")
        deployments.push({
          deploymentId,
          digest,
          url,
          ...(member(d, "sizeBytes") !== undefined ? { sizeBytes: member(d, "sizeBytes") } : {}),
        });
    }
  }
  return {
    res,
    tree,
    version: versionOf(member(tree, "manifestVersion")),
    deployments,
    bundle: member(tree, "bundle"),
  };
}

/** GET a path the manifest named (deployment YAML or bundle) with optional extra headers. */
export function getArtifact(
  t: CheckTools,
  wire: WireClient,
  path: string,
  headers: Record<string, string> = {},
): Promise<WireResponse> {
  return wire.request(t, { method: "GET", path, headers });
}

// ---------------------------------------------------------------------------------------------
// Deployments through the driver

/** A deployment the check created: where it went and how it looks in the manifest. */
export interface Placed {
  deploymentId: string;
  deviceId: string;
  client: WfmClient;
}

/**
 * deployApp registers a fresh device for the first client and deploys a published fixture
 * (single by default) to it through the driver.
 */
export async function deployApp(
  ctx: WfmCtx,
  t: CheckTools,
  short: string,
  opts: { app?: "single" | "multi"; client?: WfmClient; parameters?: Record<string, unknown> } = {},
): Promise<Placed> {
  const apps = await ctx.apps(t);
  const app = apps[opts.app ?? "single"];
  const client = opts.client ?? ctx.clients[0];
  const deviceId = uniqueDeviceId(short);
  await registerDevice(t, client, deviceId);
  const { deploymentId } = await ctx.driver.deploy({
    applicationId: app.applicationId,
    version: app.version,
    clientId: client.clientId,
    deviceId,
    ...(opts.parameters ? { parameters: opts.parameters } : {}),
    ...(app.vendorReference ? { vendorReference: app.vendorReference } : {}),
  });
  t.note(`deployed ${app.applicationId} ${app.version} as ${deploymentId} to ${deviceId}`);
  return { deploymentId, deviceId, client };
}

/**
 * findDeployment reads the manifest and returns the entry for deploymentId; its absence fails
 * `requirement` (the driver said it deployed, so the caller's manifest must list it).
 */
export async function findDeployment(
  t: CheckTools,
  wire: WireClient,
  deploymentId: string,
  requirement: string,
): Promise<{ manifest: ManifestRead; ref: ManifestDeploymentRef }> {
  const manifest = await getManifest(t, wire);
  const ref = manifest.deployments.find((d) => d.deploymentId === deploymentId);
  if (!ref)
    t.fail(
      `the manifest does not list deployment ${deploymentId} that the driver created (${requirement}); it lists ${manifest.deployments.map((d) => d.deploymentId).join(", ") || "nothing"}`,
    );
  return { manifest, ref };
}

/** Fetch a deployment's YAML and parse it (lossless); a non-200 fails `requirement`. */
export async function fetchDeploymentYaml(
  t: CheckTools,
  wire: WireClient,
  ref: ManifestDeploymentRef,
  requirement: string,
): Promise<{ res: WireResponse; tree: JsonObject }> {
  const res = await getArtifact(t, wire, ref.url);
  t.expect(
    res.status === 200,
    `GET ${ref.url}: expected 200 (${requirement}), got ${res.status}${bodyHint(res)}`,
  );
  const parsed = parseYaml(res.body);
  t.expect(
    isObject(parsed.value),
    `the ApplicationDeployment at ${ref.url} is not a YAML mapping (${requirement})`,
    parsed.problems,
  );
  return { res, tree: parsed.value as JsonObject };
}

// ---------------------------------------------------------------------------------------------
// The extension variant package (items 61, 62, 83)

/**
 * What the extension variant carries, so checks compare against the same values the package was
 * built with. A helm profile comes first so a WFM that ignores the requested profile type shows.
 */
export const EXTENSION_VARIANT = {
  applicationId: "conformance-ext",
  version: "1.0.0",
  composeComponents: ["hello"],
  rootExtension: [
    "x-conformance-root-extensions",
    { marker: "root-extension-must-not-reach-devices" },
  ] as const,
  profileExtension: [
    "x-conformance-profile-extensions",
    { level: "profile", weights: [1, 2, 3], nested: { on: true } },
  ] as const,
  componentExtension: [
    "x-conformance-component-extensions",
    { level: "component", note: "copied verbatim" },
  ] as const,
};

/** The parts of a fixture description the variant rewrites. */
interface FixtureDoc {
  apiVersion: string;
  metadata: Record<string, unknown>;
  deploymentProfiles: Array<
    {
      id: string;
      components: Array<
        { name: string; properties: { repository: string } } & Record<string, unknown>
      >;
    } & Record<string, unknown>
  >;
}

/** The variant could not be built or pushed (environment, not the WFM). */
export class VariantPushError extends Error {
  override readonly name = "VariantPushError";
}

const variantPushes = new Map<string, Promise<string>>();

/** `<registry>` of a package reference `<registry>/<repo>:<tag>`. */
function registryOfReference(ref: string): string {
  const host = ref.split("/")[0];
  if (!host) throw new VariantPushError(`cannot read the registry of ${ref}`);
  return host;
}

function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "");
  return host === "localhost" || host.startsWith("127.") || host === "[::1]";
}

/**
 * Builds the variant package in a temp dir from the compose-single fixture (compose profile with
 * profile and component extensions, a root extension) plus helm-app's chart as a first, helm
 * profile, validates it and pushes it next to the harness's fixtures, once per registry.
 */
async function pushVariant(registry: string): Promise<string> {
  const valid = listFixtures().valid;
  const single = valid.find((f) => f.name === "compose-single");
  const helm = valid.find((f) => f.name === "helm-app");
  if (!single || !helm) throw new VariantPushError("fixtures compose-single/helm-app missing");
  const dir = await mkdtemp(join(tmpdir(), "margo-conf-ext-"));
  try {
    await cp(single.dir, dir, { recursive: true });
    await cp(join(helm.dir, "components", "hello-web"), join(dir, "components", "hello-web"), {
      recursive: true,
    });
    const doc = parseYamlText(await readFile(join(dir, "margo.yaml"), "utf8")) as FixtureDoc;
    const base = `oci://${registry}/margo-conformance/${EXTENSION_VARIANT.applicationId}`;
    const compose = doc.deploymentProfiles[0];
    const component = compose?.components[0];
    if (!compose || !component) throw new VariantPushError("compose-single has no component");
    compose.id = `${EXTENSION_VARIANT.applicationId}-compose`;
    compose[EXTENSION_VARIANT.profileExtension[0]] = EXTENSION_VARIANT.profileExtension[1];
    component.properties.repository = `${base}/${component.name}`;
    component[EXTENSION_VARIANT.componentExtension[0]] = EXTENSION_VARIANT.componentExtension[1];
    const variant = {
      apiVersion: doc.apiVersion,
      id: EXTENSION_VARIANT.applicationId,
      metadata: {
        ...doc.metadata,
        name: "Conformance extensions",
        version: EXTENSION_VARIANT.version,
      },
      deploymentProfiles: [
        {
          type: "helm",
          id: `${EXTENSION_VARIANT.applicationId}-helm`,
          components: [
            {
              name: "hello-web",
              properties: { repository: `${base}/hello-web`, revision: "0.3.0", wait: true },
            },
          ],
        },
        compose,
      ],
      [EXTENSION_VARIANT.rootExtension[0]]: EXTENSION_VARIANT.rootExtension[1],
    };
    await writeFile(join(dir, "margo.yaml"), stringifyYamlText(variant));
    const checked = await validatePackageDir(dir);
    const bad = checked.problems.filter((x) => x.severity === "error");
    if (bad.length)
      throw new VariantPushError(
        `the extension variant does not validate: ${bad.map((b) => `${b.rule} ${b.message}`).join("; ")}`,
      );
    const client = new OciClient({ registry, plainHttp: isLoopback(registry) });
    const pub = await publishPackageDir(client, dir, {
      packageRepo: `margo-conformance/${EXTENSION_VARIANT.applicationId}/package`,
    });
    return `${registry}/${pub.pkg.repository}:${pub.pkg.tag}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * publishExtensionVariant pushes the variant (once per process) and publishes it through the
 * driver (every call: a reset before the check may have forgotten the catalogue). A refusal by
 * the WFM surfaces as WfmDriverRefused, which item 83 judges.
 */
export async function publishExtensionVariant(
  ctx: WfmCtx,
  t: CheckTools,
): Promise<{ applicationId: string; version: string }> {
  const apps = await ctx.apps(t);
  const registry = registryOfReference(apps.single.ociReference);
  let p = variantPushes.get(registry);
  if (!p) {
    p = pushVariant(registry);
    variantPushes.set(registry, p);
    p.catch(() => variantPushes.delete(registry));
  }
  const ref = await p;
  const published = await ctx.driver.publish(ref, isLoopback(registry));
  return { applicationId: published.applicationId, version: published.version };
}
