/**
 * wfm.errors: the shape of every error the suite provokes (items 84, 85; OpenAPI ProblemDetail).
 * Other families judge status codes and problem types leniently; only this family judges
 * Content-Type, the RFC 9457 members, about:blank titles and the retry hints.
 */
import { STATUS_CODES } from "node:http";
import { MANIFEST_MEDIA_TYPE, parseJson } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type { WfmClient, WfmCtx, WireRequest, WireResponse } from "../context.js";
import { extrasOf } from "../identity/extras.js";
import {
  capabilitiesBody,
  HarnessSetupError,
  header,
  isObject,
  PROBLEM_NS,
  uniqueDeviceId,
  wfmCheck,
} from "./support.js";

const ZERO_DIGEST = `sha256:${"0".repeat(64)}`;

/** An error the suite provokes, with the status and Margo type the registry gives it. */
interface Provocation {
  what: string;
  status: number;
  /** Registered Margo type fragment; undefined when about:blank (or a vendor type) applies. */
  margoType?: string;
  request(deviceId: string): WireRequest;
}

const PROVOCATIONS: Provocation[] = [
  {
    what: "malformed JSON capabilities PUT",
    status: 400,
    margoType: "invalid-request",
    request: (d) => ({
      method: "PUT",
      path: `/api/v1/capabilities/${d}`,
      headers: { "content-type": "application/json" },
      body: '{"properties": {"id": ',
    }),
  },
  {
    what: "capabilities PUT with an unknown enum value",
    status: 422,
    margoType: "semantic-error",
    request: (d) => {
      const body = capabilitiesBody(d) as Record<string, Record<string, unknown>>;
      const props = body.properties ?? {};
      props.cpus = [{ cores: 2, architecture: "vax" }];
      return {
        method: "PUT",
        path: `/api/v1/capabilities/${d}`,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      };
    },
  },
  {
    what: "GET of an unknown deployment digest",
    status: 404,
    margoType: "deployment-not-found",
    request: () => ({
      method: "GET",
      path: `/api/v1/deployments/00000000-0000-4000-8000-000000000000/${ZERO_DIGEST}`,
    }),
  },
  {
    what: "GET of an unknown bundle digest",
    status: 404,
    margoType: "invalid-bundle",
    request: () => ({ method: "GET", path: `/api/v1/bundles/${ZERO_DIGEST}` }),
  },
  {
    what: "manifest GET accepting only text/html",
    status: 406,
    margoType: "server-cannot-generate-response",
    request: () => ({
      method: "GET",
      path: "/api/v1/deployments",
      headers: { accept: "text/html" },
    }),
  },
  {
    what: "DELETE of capabilities never reported",
    status: 404,
    margoType: "device-not-found",
    request: (d) => ({ method: "DELETE", path: `/api/v1/capabilities/${d}-never` }),
  },
];

/** The Margo problem-type registry (digest 9): the only fragments allowed in the reserved namespace. */
export const REGISTERED_MARGO_TYPES: readonly string[] = [
  "invalid-request",
  "semantic-error",
  "not-authorized",
  "gateway-not-found",
  "device-not-found",
  "invalid-bundle",
  "deployment-not-found",
  "server-cannot-generate-response",
];

/**
 * Why a problem type breaks the reserved namespace (wfm-101), or undefined: a type under the
 * Margo problem-type URI must be one of the registered ones, spelled exactly.
 */
export function namespaceProblem(type: unknown): string | undefined {
  if (typeof type !== "string" || !type.startsWith(PROBLEM_NS)) return undefined;
  const fragment = type.startsWith(`${PROBLEM_NS}#`)
    ? type.slice(PROBLEM_NS.length + 1)
    : undefined;
  if (fragment !== undefined && REGISTERED_MARGO_TYPES.includes(fragment)) return undefined;
  return `${JSON.stringify(type)} is in the reserved Margo namespace but is not a registered Margo type`;
}

/** The answer to a path the Management Interface does not have (an error outside the registry). */
const UNKNOWN_PATH: WireRequest = { method: "GET", path: "/api/v1/conformance-no-such-endpoint" };

/** Provoke every error once on client a; a status other than the expected one is a setup error. */
async function provokeAll(
  ctx: WfmCtx,
  t: CheckTools,
): Promise<Array<{ p: Provocation; res: WireResponse }>> {
  const deviceId = uniqueDeviceId("err");
  const out: Array<{ p: Provocation; res: WireResponse }> = [];
  for (const p of PROVOCATIONS) {
    const res = await ctx.clients[0].wire.request(t, p.request(deviceId));
    if (res.status !== p.status) {
      // Status codes are other families' concern; here there is no error to judge.
      t.note(`${p.what}: HTTP ${res.status}, not the ${p.status} this check judges; left out`);
      continue;
    }
    out.push({ p, res });
  }
  if (out.length === 0)
    throw new HarnessSetupError("none of the provoked requests produced the expected error status");
  return out;
}

function problemOf(res: WireResponse): Record<string, unknown> | undefined {
  const v = parseJson(res.body).value;
  return isObject(v) ? (v as Record<string, unknown>) : undefined;
}

function mediaType(res: WireResponse): string {
  return (header(res, "content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

export const errorChecks = [
  wfmCheck({
    id: "wfm.errors.problem-json-shape",
    title: "Error answers are application/problem+json with type, title and status = HTTP status",
    requirements: ["wfm-084", "wfm-100"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const bad: string[] = [];
      for (const { p, res } of await provokeAll(ctx, t)) {
        const ct = mediaType(res);
        if (ct !== "application/problem+json")
          bad.push(`${p.what}: Content-Type ${header(res, "content-type") ?? "(none)"}`);
        const body = problemOf(res);
        if (!body) {
          bad.push(`${p.what}: body is not a JSON object`);
          continue;
        }
        if (typeof body.type !== "string") bad.push(`${p.what}: no string "type"`);
        if (typeof body.title !== "string") bad.push(`${p.what}: no string "title"`);
        if (body.status !== res.status)
          bad.push(`${p.what}: "status" ${JSON.stringify(body.status)} but HTTP ${res.status}`);
      }
      t.expect(
        bad.length === 0,
        `error answers break RFC 9457 / item 84 (Content-Type application/problem+json; type, title, status = HTTP status): ${bad.join("; ")}`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.errors.margo-namespace-registered-only",
    title:
      "Every problem type the suite provoked that lies in the Margo namespace is a registered Margo type",
    requirements: ["wfm-101"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      // Every answer, whatever its status: the namespace rule holds for all of them.
      const deviceId = uniqueDeviceId("ns");
      const asked = [
        ...PROVOCATIONS.map((p) => ({ what: p.what, req: p.request(deviceId) })),
        { what: "GET of an unknown path", req: UNKNOWN_PATH },
      ];
      const bad: string[] = [];
      const seen: string[] = [];
      for (const { what, req } of asked) {
        const res = await ctx.clients[0].wire.request(t, req);
        const type = problemOf(res)?.type;
        if (type !== undefined) seen.push(`${what}: ${JSON.stringify(type)}`);
        const problem = namespaceProblem(type);
        if (problem) bad.push(`${what} (HTTP ${res.status}): ${problem}`);
      }
      if (seen.length === 0)
        throw new HarnessSetupError("none of the provoked answers carried a problem type to judge");
      t.note(`judged ${seen.join("; ")}`);
      t.expect(
        bad.length === 0,
        `wfm-101: the Margo namespace ${PROBLEM_NS} holds only the registered types (${REGISTERED_MARGO_TYPES.join(", ")}); vendor types belong in the vendor's own URI namespace: ${bad.join("; ")}`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.errors.registered-margo-types",
    title: "Margo error conditions carry their registered problem type",
    requirements: ["wfm-084"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const bad: string[] = [];
      for (const { p, res } of await provokeAll(ctx, t)) {
        if (!p.margoType) continue;
        const type = problemOf(res)?.type;
        const want = `${PROBLEM_NS}#${p.margoType}`;
        if (type !== want) bad.push(`${p.what}: type ${JSON.stringify(type)}, expected ${want}`);
      }
      t.expect(bad.length === 0, `item 84: ${bad.join("; ")}`);
    },
  }),
  wfmCheck({
    id: "wfm.errors.about-blank-title",
    title: "about:blank problems carry the HTTP status phrase as title",
    requirements: ["wfm-084s"],
    level: "SHOULD",
    async run(ctx: WfmCtx, t: CheckTools) {
      const res = await ctx.clients[0].wire.request(t, UNKNOWN_PATH);
      const body = problemOf(res);
      // Before the about:blank skip: an unknown path answered with a Margo type is exactly what
      // the skip would otherwise hide (no Margo condition applies to it).
      const problem = namespaceProblem(body?.type);
      t.expect(
        problem === undefined,
        `an unknown path (HTTP ${res.status}) was answered with ${problem}; no Margo condition applies, so about:blank (item 84, SHOULD) or a vendor type (wfm-101)`,
      );
      if (body?.type !== "about:blank")
        t.skip(
          `the unknown-path answer (HTTP ${res.status}) is not an about:blank problem (type ${JSON.stringify(body?.type)}); nothing to judge`,
        );
      const phrase = STATUS_CODES[res.status];
      t.expect(
        body.title === phrase,
        `about:blank problem for HTTP ${res.status} has title ${JSON.stringify(body.title)}; item 84 (SHOULD) wants the status phrase ${JSON.stringify(phrase)}`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.errors.client-errors-not-retryable",
    title: "4xx answers other than 429 carry retryable false and backoffStrategy none",
    requirements: ["wfm-085"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const bad: string[] = [];
      for (const { p, res } of await provokeAll(ctx, t)) {
        const body = problemOf(res);
        if (!body) continue; // the shape check reports non-JSON bodies
        if (body.retryable !== false)
          bad.push(`${p.what}: retryable ${JSON.stringify(body.retryable)}`);
        if (body.backoffStrategy !== "none")
          bad.push(`${p.what}: backoffStrategy ${JSON.stringify(body.backoffStrategy)}`);
      }
      t.expect(
        bad.length === 0,
        `item 85 requires retryable: false and backoffStrategy: "none" on 4xx other than 429: ${bad.join("; ")}`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.errors.rate-limit-429-hints",
    title: "A 429 carries Retry-After, retryable true and backoffStrategy exponential",
    requirements: ["wfm-085"],
    level: "MUST",
    timeoutMs: 45_000,
    async run(ctx: WfmCtx, t: CheckTools) {
      const admit = extrasOf(ctx)?.admitClient;
      if (!admit)
        t.skip("needs wfm.clients.provisionCommand: a spare client whose rate limit may be spent");
      const spare = await admit("rl");
      const res = await firstRateLimited(t, spare, 400);
      if (!res) t.skip("no 429 within 400 rapid requests: no rate limit cheap enough to trigger");
      const body = problemOf(res);
      const retryAfter = header(res, "retry-after");
      t.expect(
        retryAfter !== undefined && /^\d+$|GMT$/.test(retryAfter.trim()),
        `429 without a valid Retry-After header (item 85); got ${JSON.stringify(retryAfter)}`,
      );
      t.expect(
        body?.retryable === true,
        `429 problem has retryable ${JSON.stringify(body?.retryable)}; item 85 requires true`,
      );
      t.expect(
        body?.backoffStrategy === "exponential",
        `429 problem has backoffStrategy ${JSON.stringify(body?.backoffStrategy)}; item 85 requires "exponential"`,
      );
    },
  }),
];

/** Fire manifest GETs, 8 at a time, until one is 429 or `max` were sent. */
async function firstRateLimited(
  t: CheckTools,
  client: WfmClient,
  max: number,
): Promise<WireResponse | undefined> {
  // Evidence of 400 identical requests helps nobody: keep only the 429 (and the count).
  const quiet: CheckTools = {
    signal: t.signal,
    evidence: () => {},
    note: (x) => t.note(x),
    fail: (m, d) => t.fail(m, d),
    skip: (r) => t.skip(r),
    expect: (c, m, d) => t.expect(c, m, d),
    expectEqual: (a, b, w) => t.expectEqual(a, b, w),
  };
  let sent = 0;
  let hit: WireResponse | undefined;
  while (sent < max && !hit) {
    const batch = Array.from({ length: 8 }, () =>
      client.wire.request(quiet, {
        method: "GET",
        path: "/api/v1/deployments",
        headers: { accept: MANIFEST_MEDIA_TYPE },
      }),
    );
    sent += batch.length;
    for (const r of await Promise.allSettled(batch))
      if (r.status === "fulfilled" && r.value.status === 429) hit ??= r.value;
  }
  t.note(`${sent} requests sent${hit ? ", got 429" : ", no 429"}`);
  if (hit)
    t.note(
      `429 answer: headers ${JSON.stringify(hit.headers)} body ${hit.body.subarray(0, 500).toString("utf8")}`,
    );
  return hit;
}
