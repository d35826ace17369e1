/**
 * Test-only mutants of the reference agent: each is a deliberately broken variant that violates
 * exactly one requirement of the conformance catalogue, switched on by
 * `MARGO_TEST_MUTANT=<name>`. The conformance harness's mutant matrix runs its device suite against
 * each one to prove that the check meant to catch the violation fails, and only its family.
 *
 * The variable is read once. An unknown name makes the CLI refuse to start (`assertMutantEnv`),
 * so a typo in a test cannot silently exercise the good code and pass for the wrong reason.
 * An active mutant is never silent: the CLI prints `mutantBanner()` on stderr and the driver
 * Info answer carries `mutantFeatures()`.
 * Without the variable every `mutant()` is false and the agent is the reference implementation.
 */

/** One mutant: the requirement id it breaks, the check family meant to catch it, and why. */
export interface MutantSpec {
  requirement: string;
  family: string;
  why: string;
}

export const AGENT_MUTANTS = {
  "tls12-only": {
    requirement: "device-002",
    family: "device.transport",
    why: "the agent offers at most TLS 1.2 to the WFM, so 1.3 is never negotiated",
  },
  "wfm-id-not-checked": {
    requirement: "device-008",
    family: "device.identity",
    why: "any SPIFFE ID chaining to the anchors is accepted as the WFM, not only the expected WFM ID",
  },
  "bundle-merged": {
    requirement: "device-022",
    family: "device.trust",
    why: "a new trust bundle is merged into the anchors in use instead of replacing them",
  },
  "capabilities-not-first": {
    requirement: "device-025",
    family: "device.capabilities",
    why: "the agent polls the manifest once before its first capabilities PUT",
  },
  "rollback-accepted": {
    requirement: "device-051",
    family: "device.manifest",
    why: "a manifest whose manifestVersion is not above the accepted one is applied",
  },
  "digest-not-verified": {
    requirement: "device-052",
    family: "device.manifest",
    why: "fetched YAML and bundles are not checked against their digests (and YAML is fetched one by one, so no bundle member match stands in for the check)",
  },
  "size-bytes-enforced": {
    requirement: "device-058",
    family: "device.manifest",
    why: "a deployment whose sizeBytes differs from the bytes fetched is refused",
  },
  "components-reversed": {
    requirement: "device-072",
    family: "device.reconcile",
    why: "components are installed in reverse of the listed order",
  },
  "no-removal": {
    requirement: "device-055",
    family: "device.reconcile",
    why: "a deployment dropped from the manifest is reported removed but its containers are left running (no orphan sweep either)",
  },
  "status-removed-not-reported": {
    requirement: "device-065",
    family: "device.status",
    why: "the final removed state of a deployment is never reported (removal itself happens)",
  },
  "retry-after-ignored": {
    requirement: "device-086",
    family: "device.retry",
    why: "Retry-After and retryAfterSeconds are ignored: a 429/503 is retried on the next regular poll",
  },
} as const satisfies Record<string, MutantSpec>;

export type AgentMutantName = keyof typeof AGENT_MUTANTS;

/** The environment variable; test-only, never documented for operators. */
export const MUTANT_ENV = "MARGO_TEST_MUTANT";

/** MARGO_TEST_MUTANT names no mutant of this program: refuse rather than run the good code. */
export class UnknownMutantError extends Error {
  override readonly name = "UnknownMutantError";
}

/** The mutant named by `env`, validated; undefined when the variable is unset or empty. */
export function mutantFromEnv(env: NodeJS.ProcessEnv): AgentMutantName | undefined {
  const raw = env[MUTANT_ENV];
  if (raw === undefined || raw === "") return undefined;
  if (!Object.hasOwn(AGENT_MUTANTS, raw)) {
    throw new UnknownMutantError(
      `${MUTANT_ENV}=${JSON.stringify(raw)} names no mutant of the reference agent; known: ${Object.keys(AGENT_MUTANTS).join(", ")}`,
    );
  }
  return raw as AgentMutantName;
}

let active: { name: AgentMutantName | undefined } | undefined;

/** Throws UnknownMutantError when the process environment names an unknown mutant. */
export function assertMutantEnv(): AgentMutantName | undefined {
  active ??= { name: mutantFromEnv(process.env) };
  return active.name;
}

/**
 * True when `name` is the active mutant. Hooks call it at the one place the mutant changes; the
 * environment is read on the first call only, so a hot path pays one comparison.
 */
export function mutant(name: AgentMutantName): boolean {
  return assertMutantEnv() === name;
}

/**
 * The one stderr line the CLI prints at start when a mutant is active, so a log or a terminal
 * never passes a deliberately broken program off as the reference; undefined for the reference.
 */
export function mutantBanner(
  name: AgentMutantName | undefined = assertMutantEnv(),
): string | undefined {
  if (name === undefined) return undefined;
  return `MUTANT ACTIVE: ${name} breaks ${AGENT_MUTANTS[name].requirement}; test-only`;
}

/**
 * The driver Info feature naming the active mutant (`mutant:<name>`): it lands in the report's
 * implementation info, so a run against a mutant says so and a run that asked for none can
 * refuse a report that carries one. Empty for the reference.
 */
export function mutantFeatures(name: AgentMutantName | undefined = assertMutantEnv()): string[] {
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
