/**
 * The mutant matrix: for every deliberately broken variant of the reference WFM and agent
 * (switched on by MARGO_TEST_MUTANT, defined in reference-wfm/src/mutants.ts and
 * reference-agent/src/mutants.ts), the suite that judges it, the one check family meant to
 * catch it, the requirement it breaks, and the checks that must fail. The harness never imports
 * the reference code, so the names are written out here; `mutants.test.ts` proves this table and
 * the programs agree by reading each CLI's refusal of an unknown name, which lists the known ones.
 */
import type { SuiteName } from "../src/core/types.js";

export interface MutantCase {
  /** Which program the mutant lives in. */
  side: "wfm" | "agent";
  /** The MARGO_TEST_MUTANT value. */
  name: string;
  /** The suite that judges that program. */
  suite: Extract<SuiteName, "wfm" | "device">;
  /** The only check family allowed to fail (first two segments of a check id). */
  family: string;
  /** The catalogue requirement the mutant breaks. */
  requirement: string;
  /** Checks that must report `fail` (not error, not skip) against the mutant. */
  mustFail: string[];
}

export const MUTANT_MATRIX: readonly MutantCase[] = [
  // ---- reference WFM, judged by the WFM suite -------------------------------------------------
  {
    side: "wfm",
    name: "tls12-default",
    suite: "wfm",
    family: "wfm.transport",
    requirement: "wfm-002",
    mustFail: ["wfm.transport.tls13-by-default"],
  },
  {
    side: "wfm",
    name: "retired-client-accepted",
    suite: "wfm",
    family: "wfm.identity",
    requirement: "wfm-007",
    mustFail: ["wfm.identity.unaccepted-client-denied"],
  },
  {
    side: "wfm",
    name: "problem-as-json",
    suite: "wfm",
    family: "wfm.errors",
    requirement: "wfm-084",
    mustFail: ["wfm.errors.problem-json-shape"],
  },
  {
    side: "wfm",
    name: "yaml-cross-client",
    suite: "wfm",
    family: "wfm.isolation",
    requirement: "wfm-005",
    mustFail: ["wfm.isolation.artifacts-scoped"],
  },
  {
    side: "wfm",
    name: "child-before-parent-accepted",
    suite: "wfm",
    family: "wfm.capabilities",
    requirement: "wfm-027",
    mustFail: ["wfm.capabilities.child-before-parent-404"],
  },
  {
    side: "wfm",
    name: "etag-not-body-digest",
    suite: "wfm",
    family: "wfm.manifest",
    requirement: "wfm-039",
    mustFail: ["wfm.manifest.etag-is-body-digest"],
  },
  {
    side: "wfm",
    name: "manifest-version-reused",
    suite: "wfm",
    family: "wfm.manifest",
    requirement: "wfm-042",
    mustFail: ["wfm.manifest.version-increases"],
  },
  {
    side: "wfm",
    name: "bundle-null-omitted",
    suite: "wfm",
    family: "wfm.manifest",
    requirement: "wfm-043",
    mustFail: ["wfm.manifest.bundle-null-when-empty"],
  },
  {
    side: "wfm",
    name: "yaml-not-immutable",
    suite: "wfm",
    family: "wfm.artifacts",
    requirement: "wfm-047",
    mustFail: ["wfm.artifacts.immutable-caching"],
  },
  {
    side: "wfm",
    name: "components-reordered",
    suite: "wfm",
    family: "wfm.deployment",
    requirement: "wfm-061",
    mustFail: ["wfm.deployment.components-in-order"],
  },
  {
    side: "wfm",
    name: "status-update-201",
    suite: "wfm",
    family: "wfm.status",
    requirement: "wfm-071",
    mustFail: ["wfm.status.update-200"],
  },
  {
    side: "wfm",
    name: "bundle-endpoint-no-etag",
    suite: "wfm",
    family: "wfm.trust",
    requirement: "mis-017",
    mustFail: ["wfm.trust.bundle-etag-304"],
  },
  // ---- reference agent, judged by the device suite --------------------------------------------
  {
    side: "agent",
    name: "tls12-only",
    suite: "device",
    family: "device.transport",
    requirement: "device-002",
    mustFail: ["device.transport.tls13-negotiated"],
  },
  {
    side: "agent",
    name: "wfm-id-not-checked",
    suite: "device",
    family: "device.identity",
    requirement: "device-008",
    mustFail: ["device.identity.refuses-wrong-wfm-id"],
  },
  {
    side: "agent",
    name: "bundle-merged",
    suite: "device",
    family: "device.trust",
    requirement: "device-022",
    mustFail: ["device.trust.rotation-replaces-anchors"],
  },
  {
    side: "agent",
    name: "capabilities-not-first",
    suite: "device",
    family: "device.capabilities",
    requirement: "device-025",
    mustFail: ["device.capabilities.first-exchange"],
  },
  {
    side: "agent",
    name: "rollback-accepted",
    suite: "device",
    family: "device.manifest",
    requirement: "device-051",
    mustFail: ["device.manifest.rollback-refused"],
  },
  {
    side: "agent",
    name: "digest-not-verified",
    suite: "device",
    family: "device.manifest",
    requirement: "device-052",
    mustFail: ["device.manifest.deployment-digest-mismatch"],
  },
  {
    side: "agent",
    name: "size-bytes-enforced",
    suite: "device",
    family: "device.manifest",
    requirement: "device-058",
    mustFail: ["device.manifest.size-bytes-not-integrity"],
  },
  {
    side: "agent",
    name: "components-reversed",
    suite: "device",
    family: "device.reconcile",
    requirement: "device-072",
    mustFail: ["device.reconcile.listed-order"],
  },
  {
    side: "agent",
    name: "no-removal",
    suite: "device",
    family: "device.reconcile",
    requirement: "device-055",
    mustFail: ["device.reconcile.removed-when-absent"],
  },
  {
    side: "agent",
    name: "status-removed-not-reported",
    suite: "device",
    family: "device.status",
    requirement: "device-065",
    mustFail: ["device.status.removal-reported"],
  },
  {
    side: "agent",
    name: "retry-after-ignored",
    suite: "device",
    family: "device.retry",
    requirement: "device-086",
    mustFail: ["device.retry.manifest-retry-after-429", "device.retry.manifest-retry-after-503"],
  },
];

/** The family of a check id: its first two segments. */
export function familyOf(checkId: string): string {
  return checkId.split(".").slice(0, 2).join(".");
}
