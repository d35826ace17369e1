/** A RunReport covering every outcome and evidence kind, with hostile strings, for the report writers' tests. */
import { summarise } from "../core/runner.js";
import type { CheckResult, RunReport } from "../core/types.js";

const NASTY = `<script>alert("x")</script> & 'quotes' ]]> \u0001 \ud800 end`;

function result(
  id: string,
  outcome: CheckResult["outcome"],
  extra: Partial<CheckResult> = {},
): CheckResult {
  const suite = id.split(".")[0] as CheckResult["suite"];
  return {
    id,
    title: `title of ${id}`,
    suite,
    family: id.split(".").slice(0, 2).join("."),
    level: "MUST",
    part: "core",
    requirements: [`${suite}-039`],
    outcome,
    knownFailing: false,
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 12,
    notes: [],
    evidence: [],
    ...extra,
  };
}

export function sampleReport(): RunReport {
  const checks: CheckResult[] = [
    result("wfm.manifest.etag-is-body-digest", "pass", {
      evidence: [
        {
          kind: "http",
          at: "2026-01-01T00:00:00.000Z",
          durationMs: 3,
          actor: "client conf-a",
          request: {
            method: "GET",
            url: "https://127.0.0.1:9443/api/v1/clients/x/deployments",
            headers: { accept: "application/json" },
          },
          response: {
            status: 200,
            headers: { etag: '"sha256:abc"' },
            body: {
              text: '{"manifestVersion":"1","bundle":null}',
              sizeBytes: 36,
              sha256: "ab",
              truncated: false,
            },
          },
        },
        {
          kind: "grpc",
          at: "t",
          durationMs: 2,
          method: "/margo.WfmDriver/Deploy",
          request: { a: 1 },
          error: { code: 3, message: NASTY },
        },
        { kind: "docker", at: "t", what: "containers", data: [{ Names: ["/x"] }] },
        {
          kind: "command",
          at: "t",
          command: "margo-wfm client add a",
          exitCode: 0,
          stdout: "ok",
          stderr: "",
        },
        { kind: "note", at: "t", text: "a note" },
      ],
      notes: ["a note"],
    }),
    result("wfm.errors.problem-json", "fail", {
      message: `expected application/problem+json, got text/html ${NASTY}`,
      details: { got: NASTY },
    }),
    result("wfm.status.known", "fail", { knownFailing: true, message: "known" }),
    result("device.reconcile.order", "error", { message: "check timed out after 30000 ms" }),
    result("package.oci.tag", "skip", {
      message: "no OCI source",
      level: "SHOULD",
      part: "extended",
      requirements: ["package-081"],
    }),
  ];
  return {
    reportVersion: "1.0",
    tool: { name: "margo-conformance", version: "0.1.0" },
    spec: { name: "Margo", version: "1.0.0-rc.3" },
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:01.000Z",
    durationMs: 1000,
    implementations: {
      wfm: {
        vendor: "Vendor <&>",
        product: "WFM",
        version: "1",
        margoVersion: "1.0.0-rc.3",
        features: ["compose"],
        endpoint: "https://127.0.0.1:9443",
      },
    },
    profiles: ["wfm-core", "wfm-extended"],
    summary: summarise(checks),
    checks,
    requirements: [
      {
        id: "wfm-039",
        level: "MUST",
        persona: "wfm",
        section: "digest 6.1",
        checklistItem: 39,
        crId: "MI-015",
        text: `text ${NASTY}`,
        checks: ["wfm.manifest.etag-is-body-digest", "wfm.errors.problem-json"],
        outcome: "fail",
      },
      {
        id: "package-081",
        level: "SHOULD",
        persona: "package",
        section: "s",
        text: "t",
        checks: ["package.oci.tag"],
        outcome: "skip",
      },
      {
        id: "device-002",
        level: "MUST",
        persona: "device",
        section: "s",
        text: "t",
        checks: [],
        outcome: "not-run",
      },
    ],
  };
}
