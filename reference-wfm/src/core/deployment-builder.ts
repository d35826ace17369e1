import type {
  ApplicationDeployment,
  ApplicationDescription,
  DeploymentProfile,
  Parameter,
} from "@margo/proto";
import { ValidationError } from "@margo/proto";
import {
  type ApplicationDescriptionDoc,
  checkParameterValue,
  validateDescription,
} from "@margo/proto/package";
import {
  canonicalJson,
  DEPLOYMENT_PROFILE_TYPES,
  DEVICE_ID_WITH_ASTERISK,
  encodeApplicationDeployment,
} from "@margo/proto/wire";
import { mutant } from "../mutants.js";
import { sha256Digest } from "./bundle.js";
import { type FieldError, WfmError } from "./errors.js";
import { fieldErrors } from "./intake.js";

/**
 * Building the ApplicationDeployment a device receives (digest 6.3, items 59-63): one profile
 * copied from the description, parameters resolved (description defaults overridden by the
 * operator) and checked against configuration.schema before anything is committed.
 */

/**
 * Every deployment goes to the namespace `margo`: a device is managed by exactly one WFM
 * (item 76), and metadata.name already carries the deployment's short id, so one fixed
 * namespace cannot collide and keeps device-side cleanup predictable.
 */
export const DEPLOYMENT_NAMESPACE = "margo";

/** A registered description, read once: the model (for the profile) and the exact doc. */
export interface ParsedDescription {
  model: ApplicationDescription;
  doc: ApplicationDescriptionDoc;
}

/** Re-reads a stored margo.yaml; it passed validation at registration, so failure is a bug. */
export function parseDescription(yaml: Uint8Array): ParsedDescription {
  const result = validateDescription(Buffer.from(yaml).toString("utf8"));
  if (!result.value || !result.doc)
    throw new WfmError("internal", "a registered description no longer validates");
  return { model: result.value, doc: result.doc };
}

/** Profile by id, else the first of a type, else the first profile; `not-found` otherwise. */
export function selectProfile(
  model: ApplicationDescription,
  by: { profileId?: string | undefined; profileType?: string | undefined },
): DeploymentProfile {
  const profiles = model.deploymentProfiles;
  let found: DeploymentProfile | undefined;
  if (by.profileId) found = profiles.find((p) => p.id === by.profileId);
  else if (by.profileType) found = profiles.find((p) => p.type === by.profileType);
  else found = profiles[0];
  if (!found) {
    const what = by.profileId ? `id ${by.profileId}` : `type ${by.profileType ?? "(any)"}`;
    throw new WfmError(
      "not-found",
      `application ${model.id} has no deployment profile with ${what}`,
    );
  }
  return found;
}

/**
 * Metadata.name: a Kubernetes object name (DNS-1123 label, at most 63 characters) made of the
 * application id and the first 8 characters of the deployment id, so operators can tell
 * deployments of one application apart while names stay unique per device.
 */
export function deploymentName(applicationId: string, deploymentId: string): string {
  const short = deploymentId.replaceAll("-", "").slice(0, 8).toLowerCase();
  const base = applicationId
    .replace(/^-+/, "")
    .slice(0, 63 - short.length - 1)
    .replace(/-+$/, "");
  return base ? `${base}-${short}` : `app-${short}`;
}

export interface ResolvedParameters {
  /** Resolved values of the parameters that apply to the profile, by name. */
  values: Record<string, unknown>;
  /** The deployment's spec.parameters (value + targets limited to the profile's components). */
  parameters: Record<string, Parameter>;
}

/**
 * Resolves parameters for a profile: defaults overridden by `overrides`, each value checked
 * against the schema rule its setting names (item 63). Unknown override names and parameters
 * left without a value are refused too; every problem is reported at once.
 */
export function resolveParameters(
  doc: ApplicationDescriptionDoc,
  profile: DeploymentProfile,
  overrides: Record<string, unknown>,
): ResolvedParameters {
  const errors: FieldError[] = [];
  const declared = doc.parameters ?? {};
  for (const name of Object.keys(overrides)) {
    if (!Object.hasOwn(declared, name))
      errors.push({
        field: `/parameters/${pointerSegment(name)}`,
        message: `application ${doc.id} declares no parameter ${JSON.stringify(name)}`,
      });
  }
  const componentNames = new Set(profile.components.map((c) => c.name));
  const settings = (doc.configuration?.sections ?? []).flatMap((s) => s.settings);
  const rules = doc.configuration?.schema ?? [];
  const values: Record<string, unknown> = {};
  const parameters: Record<string, Parameter> = {};
  for (const name of Object.keys(declared).sort()) {
    const param = declared[name];
    if (!param) continue;
    // A parameter applies when one of its targets names a component of this profile; targets
    // for other profiles' components would point the device at components it never receives.
    const targets = param.targets
      .map((t) => ({
        pointer: t.pointer,
        components: t.components.filter((c) => componentNames.has(c)),
      }))
      .filter((t) => t.components.length > 0);
    if (targets.length === 0) continue;
    const field = `/parameters/${pointerSegment(name)}`;
    const value = Object.hasOwn(overrides, name) ? overrides[name] : param.value;
    if (value === undefined || value === null) {
      errors.push({ field, message: `parameter ${name} has no default; a value must be provided` });
      continue;
    }
    for (const setting of settings.filter((s) => s.parameter === name)) {
      const rule = rules.find((r) => r.name === setting.schema);
      if (!rule) continue;
      for (const f of checkParameterValue(value, rule))
        errors.push({ field, message: `${f.message} (${f.rule})` });
    }
    values[name] = value;
    parameters[name] = { value, targets };
  }
  if (errors.length > 0)
    throw new WfmError("semantic-error", `${errors.length} parameter problem(s)`, errors);
  return { values, parameters };
}

/** Names of parameters whose setting is `immutable: true` (item 63: never changed after install). */
export function immutableParameters(doc: ApplicationDescriptionDoc): Set<string> {
  const out = new Set<string>();
  for (const section of doc.configuration?.sections ?? [])
    for (const s of section.settings) if (s.immutable === true) out.add(s.parameter);
  return out;
}

/** Immutable parameters whose resolved value differs between two revisions. */
export function immutableChanges(
  doc: ApplicationDescriptionDoc,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): FieldError[] {
  const errors: FieldError[] = [];
  for (const name of immutableParameters(doc)) {
    if (sameJson(before[name], after[name])) continue;
    errors.push({
      field: `/parameters/${pointerSegment(name)}`,
      message: `parameter ${name} is immutable and cannot change after install`,
    });
  }
  return errors;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a as never) === canonicalJson(b as never);
}

function pointerSegment(s: string): string {
  return s.replaceAll("~", "~0").replaceAll("/", "~1");
}

export interface BuildInput {
  deploymentId: string;
  deviceId: string;
  description: ParsedDescription;
  profile: DeploymentProfile;
  parameters: Record<string, Parameter>;
}

export interface BuiltDeployment {
  model: ApplicationDeployment;
  /** The exact bytes served and hashed; never re-serialised. */
  yaml: Buffer;
  digest: string;
}

/** Builds and encodes the ApplicationDeployment; refusals are `semantic-error`. */
export function buildDeployment(input: BuildInput): BuiltDeployment {
  const { deploymentId, deviceId, description, profile } = input;
  if (!DEVICE_ID_WITH_ASTERISK.test(deviceId)) {
    throw new WfmError("semantic-error", "deviceId is not a DeviceId_with_asterisk", [
      {
        field: "/deviceId",
        message: `${JSON.stringify(deviceId)} does not match DeviceId_with_asterisk`,
      },
    ]);
  }
  if (!(DEPLOYMENT_PROFILE_TYPES as readonly string[]).includes(profile.type)) {
    // rc.3 desired state has no form for custom profiles (digest open question 3).
    throw new WfmError("semantic-error", `profile ${profile.id} cannot be deployed`, [
      {
        field: "/profileId",
        message: `profile type ${JSON.stringify(profile.type)} has no rc.3 ApplicationDeployment form (helm or compose only)`,
      },
    ]);
  }
  const model: ApplicationDeployment = {
    id: deploymentId,
    metadata: {
      name: deploymentName(description.model.id, deploymentId),
      namespace: DEPLOYMENT_NAMESPACE,
      deviceId,
      labels: {},
    },
    spec: {
      applicationId: description.model.id,
      deploymentProfile: {
        type: profile.type,
        // Description order, with component extensions as the vendor wrote them (items 61-62).
        components: mutant("components-reordered")
          ? [...profile.components].reverse()
          : profile.components,
        ...(profile.deviceConstraints ? { deviceConstraints: profile.deviceConstraints } : {}),
        extensions: profile.extensions,
      },
      parameters: input.parameters,
      // Description-root extensions are for the WFM only and never reach devices (item 62).
      extensions: {},
    },
  };
  let encoded: Uint8Array;
  try {
    encoded = encodeApplicationDeployment(model);
  } catch (err) {
    // The encoder runs the decoder's rules over what it wrote; a refusal means the description
    // and the chosen values cannot form a valid rc.3 document.
    if (err instanceof ValidationError)
      throw new WfmError(
        "semantic-error",
        "the ApplicationDeployment would be invalid",
        fieldErrors(err.problems),
      );
    throw err;
  }
  const yaml = Buffer.from(encoded);
  return { model, yaml, digest: sha256Digest(yaml) };
}
