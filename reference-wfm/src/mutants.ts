/**
 * Test-only mutants of the reference WFM: each is a deliberately broken variant that violates
 * exactly one requirement of the conformance catalogue, switched on by
 * `MARGO_TEST_MUTANT=<name>`. The conformance harness's mutant matrix runs its WFM suite against
 * each one to prove that the check meant to catch the violation fails, and only its family.
 *
 * The variable is read once. An unknown name makes the CLI refuse to start (`assertMutantEnv`),
 * so a typo in a test cannot silently exercise the good code and pass for the wrong reason.
 * An active mutant is never silent: the CLI prints `mutantBanner()` on stderr and the driver
 * Info answer carries `mutantFeatures()`.
 * Without the variable every `mutant()` is false and the WFM is the reference implementation.
 */

/** One mutant: the requirement id it breaks, the check family meant to catch it, and why. */
export interface MutantSpec {
  requirement: string;
  family: string;
  why: string;
}

export const WFM_MUTANTS = {
  "tls12-default": {
    requirement: "wfm-002",
    family: "wfm.transport",
    why: "every WFM listener caps TLS at 1.2, so 1.3 is never the default",
  },
  "retired-client-accepted": {
    requirement: "wfm-007",
    family: "wfm.identity",
    why: "the accepted-client policy is ignored: a retired client's valid SVID still gets answers",
  },
  "problem-as-json": {
    requirement: "wfm-084",
    family: "wfm.errors",
    why: "problem details are sent as application/json instead of application/problem+json",
  },
  "yaml-cross-client": {
    requirement: "wfm-005",
    family: "wfm.isolation",
    why: "a deployment YAML is served to any client that names its id and digest, not only its owner",
  },
  "child-before-parent-accepted": {
    requirement: "wfm-027",
    family: "wfm.capabilities",
    why: "a child deviceId (gw/child) is registered before its gateway instead of 404 #gateway-not-found",
  },
  "etag-not-body-digest": {
    requirement: "wfm-039",
    family: "wfm.manifest",
    why: "the manifest ETag is the sha256 of the body plus a trailing newline, not of the exact body",
  },
  "manifest-version-reused": {
    requirement: "wfm-042",
    family: "wfm.manifest",
    why: "every manifest body carries manifestVersion 1, so changes reuse the version",
  },
  "bundle-null-omitted": {
    requirement: "wfm-043",
    family: "wfm.manifest",
    why: "a manifest without deployments omits `bundle` instead of writing `bundle: null`",
  },
  "yaml-not-immutable": {
    requirement: "wfm-047",
    family: "wfm.artifacts",
    why: "digest-addressed YAML and bundles are sent with Cache-Control: private, not immutable",
  },
  "components-reordered": {
    requirement: "wfm-061",
    family: "wfm.deployment",
    why: "the ApplicationDeployment lists the profile's components in reverse description order",
  },
  "status-update-201": {
    requirement: "wfm-071",
    family: "wfm.status",
    why: "a repeated status report answers 201 instead of 200",
  },
  "bundle-endpoint-no-etag": {
    requirement: "mis-017",
    family: "wfm.trust",
    why: "the SPIFFE bundle and discovery documents are served without an ETag (no 304 possible)",
  },
} as const satisfies Record<string, MutantSpec>;

export type WfmMutantName = keyof typeof WFM_MUTANTS;

/** The environment variable; test-only, never documented for operators. */
export const MUTANT_ENV = "MARGO_TEST_MUTANT";

/** MARGO_TEST_MUTANT names no mutant of this program: refuse rather than run the good code. */
export class UnknownMutantError extends Error {
  override readonly name = "UnknownMutantError";
}

/** The mutant named by `env`, validated; undefined when the variable is unset or empty. */
export function mutantFromEnv(env: NodeJS.ProcessEnv): WfmMutantName | undefined {
  const raw = env[MUTANT_ENV];
  if (raw === undefined || raw === "") return undefined;
  if (!Object.hasOwn(WFM_MUTANTS, raw)) {
    throw new UnknownMutantError(
      `${MUTANT_ENV}=${JSON.stringify(raw)} names no mutant of the reference WFM; known: ${Object.keys(WFM_MUTANTS).join(", ")}`,
    );
  }
  return raw as WfmMutantName;
}

let active: { name: WfmMutantName | undefined } | undefined;

/** Throws UnknownMutantError when the process environment names an unknown mutant. */
export function assertMutantEnv(): WfmMutantName | undefined {
  active ??= { name: mutantFromEnv(process.env) };
  return active.name;
}

/**
 * True when `name` is the active mutant. Hooks call it at the one place the mutant changes; the
 * environment is read on the first call only, so a hot path pays one comparison.
 */
export function mutant(name: WfmMutantName): boolean {
  return assertMutantEnv() === name;
}

/**
 * The one stderr line the CLI prints at start when a mutant is active, so a log or a terminal
 * never passes a deliberately broken program off as the reference; undefined for the reference.
 */
export function mutantBanner(
  name: WfmMutantName | undefined = assertMutantEnv(),
): string | undefined {
  if (name === undefined) return undefined;
  return `MUTANT ACTIVE: ${name} breaks ${WFM_MUTANTS[name].requirement}; test-only`;
}

/**
 * The driver Info feature naming the active mutant (`mutant:<name>`): it lands in the report's
 * implementation info, so a run against a mutant says so and a run that asked for none can
 * refuse a report that carries one. Empty for the reference.
 */
export function mutantFeatures(name: WfmMutantName | undefined = assertMutantEnv()): string[] {
  return name === undefined ? [] : [`mutant:${name}`];
}

/** The CLI's start-up check: the refusal message when the environment names an unknown mutant. */
export function unknownMutant(): string | undefined {
  try {
    assertMutantEnv();
    return undefined;
  } catch (e) {
    if (e instanceof UnknownMutantError) return e.message;
    throw e;
  }
}

/** `bundle-null-omitted`: drops the `"bundle":null` member from a canonical manifest body. */
export function omitNullBundle(body: Uint8Array) {
  return Buffer.from(Buffer.from(body).toString("utf8").replace('"bundle":null,', ""), "utf8");
}
