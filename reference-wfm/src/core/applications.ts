import type { ApplicationDescription } from "@margo/proto";
import {
  MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  OciClient,
  OciError,
  parseOciRepositoryUri,
  pullApplicationPackage,
  pullComposeComponent,
  REPOSITORY_RE,
  TAG_RE,
} from "@margo/proto/oci";
import { validateComposeArchive, validateDescription } from "@margo/proto/package";
import type { ApplicationRecord } from "../store/store.js";
import { WfmError } from "./errors.js";
import { fieldErrors } from "./intake.js";

/**
 * Registering an Application Package (digest 3, issue item 4): pull it through the OCI client,
 * which verifies every digest, then judge the package layout and the description with the
 * foundation's rules, the same ones the agent and the suite use.
 */

/** Builds the OCI client for one registry; injectable so tests can count or break requests. */
export type RegistryFactory = (registry: string, plainHttp: boolean) => OciClient;

export const defaultRegistryFactory: RegistryFactory = (registry, plainHttp) =>
  new OciClient({ registry, plainHttp });

/** Seconds a caller should wait before retrying when the registry is unreachable. */
export const REGISTRY_RETRY_SECONDS = 5;

export interface PackageReference {
  registry: string;
  repository: string;
  /** A tag or a `sha256:` digest. */
  reference: string;
}

/** Splits `[oci://]<registry>/<repository>(:<tag>|@<digest>)`; `semantic-error` when malformed. */
export function parsePackageReference(text: string): PackageReference {
  const bad = (why: string) =>
    new WfmError("semantic-error", `invalid OCI reference ${JSON.stringify(text)}`, [
      { field: "/ociReference", message: why },
    ]);
  const s = text.startsWith("oci://") ? text.slice("oci://".length) : text;
  const slash = s.indexOf("/");
  if (slash <= 0) throw bad("expected <registry>/<repository>:<tag> or @<digest>");
  const registry = s.slice(0, slash);
  let rest = s.slice(slash + 1);
  let reference: string;
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(reference)) throw bad("the digest must be sha256:<64 hex>");
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw bad("a tag (the application version) or a digest is required");
    reference = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(reference)) throw bad(`${JSON.stringify(reference)} is not a valid tag`);
  }
  if (!REPOSITORY_RE.test(rest)) throw bad(`${JSON.stringify(rest)} is not a valid repository`);
  return { registry, repository: rest, reference };
}

/** Pulls and validates a package; returns the record to store (registeredAt from `now`). */
export async function pullApplication(
  factory: RegistryFactory,
  ociReference: string,
  plainHttp: boolean,
  now: Date,
): Promise<ApplicationRecord> {
  const ref = parsePackageReference(ociReference);
  const client = factory(ref.registry, plainHttp);
  let pulled: Awaited<ReturnType<typeof pullApplicationPackage>>;
  try {
    pulled = await pullApplicationPackage(client, ref.repository, ref.reference);
  } catch (err) {
    throw registryError(err, ociReference);
  }
  // Layout and description problems are reported together: a vendor fixes both in one pass.
  const errors = fieldErrors(pulled.problems);
  const descriptionFile = pulled.files.find(
    (f) => f.mediaType === MARGO_APP_DESCRIPTION_MEDIA_TYPE,
  );
  const text = descriptionFile ? Buffer.from(descriptionFile.bytes).toString("utf8") : undefined;
  const checked = text !== undefined ? validateDescription(text) : undefined;
  if (!checked)
    errors.push({ field: "/margo.yaml", message: "the package has no description layer" });
  else
    errors.push(
      ...fieldErrors(checked.problems).map((e) => ({ ...e, field: `margo.yaml#${e.field}` })),
    );
  if (errors.length === 0 && checked?.value) {
    errors.push(...(await composeArchiveErrors(factory, checked.value, plainHttp, ociReference)));
  }
  if (errors.length > 0 || !descriptionFile || !checked?.value || !pulled.manifestDigest) {
    throw new WfmError(
      "semantic-error",
      `package ${ociReference} is not a valid Application Package`,
      errors,
    );
  }
  return {
    applicationId: checked.value.id,
    version: checked.value.metadata?.version ?? "",
    ociReference,
    manifestDigest: pulled.manifestDigest,
    descriptionYaml: Buffer.from(descriptionFile.bytes),
    registeredAt: now,
  };
}

/**
 * Every Compose component archive is pulled (digests verified by the OCI client) and checked
 * against the archive rules before the application is accepted (checklist 74: the WFM, like the
 * device, validates before it deploys): a package whose archive escapes its folder must never
 * reach a device's desired state. Components in other registries use the package's transport.
 */
async function composeArchiveErrors(
  factory: RegistryFactory,
  description: ApplicationDescription,
  plainHttp: boolean,
  ociReference: string,
): Promise<Array<{ field: string; message: string }>> {
  const errors: Array<{ field: string; message: string }> = [];
  for (const [p, profile] of description.deploymentProfiles.entries()) {
    if (profile.type !== "compose") continue;
    for (const [c, component] of profile.components.entries()) {
      const field = `margo.yaml#/deploymentProfiles/${p}/components/${c}`;
      const props = component.properties;
      if (!props) continue;
      let archive: Uint8Array | undefined;
      try {
        const loc = parseOciRepositoryUri(props.repository);
        const pulled = await pullComposeComponent(
          factory(loc.registry, plainHttp),
          loc.repository,
          props.revision,
          { revision: props.revision },
        );
        for (const problem of pulled.problems.filter((x) => x.severity === "error")) {
          errors.push({ field, message: `${problem.rule}: ${problem.message}` });
        }
        archive = pulled.archive;
      } catch (err) {
        throw registryError(err, `${props.repository}:${props.revision} (of ${ociReference})`);
      }
      if (!archive) continue;
      const checked = await validateComposeArchive(archive, { componentName: component.name });
      for (const problem of checked.problems.filter((x) => x.severity === "error")) {
        errors.push({
          field,
          message: `${problem.rule} at ${problem.pointer}: ${problem.message}`,
        });
      }
    }
  }
  return errors;
}

/** Network failures and registry 5xx are `unavailable` (retry); unknown names `not-found`. */
function registryError(err: unknown, ociReference: string): WfmError {
  if (!(err instanceof OciError)) {
    return new WfmError("internal", `pulling ${ociReference} failed: ${String(err)}`);
  }
  if (err.code === "NETWORK" || err.status >= 500 || err.status === 429) {
    return new WfmError(
      "unavailable",
      `registry for ${ociReference} is unreachable: ${err.message}`,
      [],
      REGISTRY_RETRY_SECONDS,
    );
  }
  if (err.status === 404 || err.code.endsWith("_UNKNOWN")) {
    return new WfmError("not-found", `${ociReference} is not in the registry (${err.code})`);
  }
  return new WfmError("semantic-error", `the registry refused ${ociReference}: ${err.message}`, [
    { field: "/ociReference", message: `${err.code}: ${err.message}` },
  ]);
}
