/**
 * wfm.identity: who may talk to the Management Interface (items 3, 4, 6, 7, 9, 10, 11, 15). Each
 * negative check changes exactly one thing about an otherwise acceptable client certificate, so
 * a refusal is a refusal for that reason; a positive control proves the minted certificates are
 * otherwise accepted (else the check errors instead of passing vacuously).
 */
import { randomBytes } from "node:crypto";
import { readCertificate, wfmClientSpiffeId } from "@margo/proto/identity";
import { MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type { Credentials, Minter, WfmCtx, WireRequest } from "../context.js";
import { extrasOf } from "../identity/extras.js";
import type { Flaw } from "../identity/minter.js";
import { attempt, describe, expectServed, isRefusal } from "../wire/outcome.js";
import {
  capabilitiesBody,
  deployApp,
  HarnessSetupError,
  header,
  isMargoType,
  problemType,
  wfmCheck,
} from "./support.js";

const ZERO_DIGEST = `sha256:${"0".repeat(64)}`;

/** One request per Management Interface endpoint (item 3 says every request). */
function everyEndpoint(deviceId: string): WireRequest[] {
  const json = { "content-type": "application/json" };
  return [
    { method: "GET", path: "/api/v1/deployments", headers: { accept: MANIFEST_MEDIA_TYPE } },
    {
      method: "PUT",
      path: `/api/v1/capabilities/${deviceId}`,
      headers: json,
      body: JSON.stringify(capabilitiesBody(deviceId)),
    },
    { method: "DELETE", path: `/api/v1/capabilities/${deviceId}` },
    {
      method: "GET",
      path: `/api/v1/deployments/00000000-0000-4000-8000-000000000000/${ZERO_DIGEST}`,
    },
    { method: "GET", path: `/api/v1/bundles/${ZERO_DIGEST}` },
    {
      method: "POST",
      path: "/api/v1/deployments/00000000-0000-4000-8000-000000000000/status",
      headers: json,
      body: JSON.stringify({
        deploymentId: "00000000-0000-4000-8000-000000000000",
        adoptedManifestVersion: 1,
        status: { state: "installed" },
        components: [],
      }),
    },
  ];
}

/** Every endpoint with these credentials must be refused; fails naming each one that was served. */
async function expectRefusedEverywhere(
  ctx: WfmCtx,
  t: CheckTools,
  creds: Credentials | null,
  actor: string,
  requirement: string,
  endpoints = everyEndpoint(`dev-id-${randomBytes(3).toString("hex")}`),
): Promise<void> {
  const served: string[] = [];
  for (const req of endpoints) {
    // Client a, same request and TLS options: served, so only the credentials differ.
    await expectServed(t, ctx.clients[0].wire, req, "client a");
    const wire = ctx.connect(creds, actor);
    try {
      const a = await attempt(t, wire, { ...req, fresh: true });
      if (!isRefusal(a)) served.push(`${req.method} ${req.path} -> ${describe(a)}`);
    } finally {
      wire.close();
    }
  }
  if (served.length)
    t.fail(
      `${actor}: expected a failed handshake or a 4xx on every endpoint (${requirement}); these were served: ${served.join("; ")}`,
    );
}

/** One GET of the manifest with these credentials must be refused. */
async function expectRefused(
  ctx: WfmCtx,
  t: CheckTools,
  creds: Credentials,
  actor: string,
  requirement: string,
): Promise<void> {
  await expectServed(t, ctx.clients[0].wire, MANIFEST_GET, "client a");
  const wire = ctx.connect(creds, actor);
  try {
    const a = await attempt(t, wire, { ...MANIFEST_GET, fresh: true });
    t.expect(
      isRefusal(a),
      `${actor}: expected the WFM to refuse (failed handshake or 4xx, ${requirement}), got ${describe(a)}`,
    );
    t.note(`${actor}: ${describe(a)}`);
  } finally {
    wire.close();
  }
}

/**
 * Positive control for in-domain minting, in every check that uses it (not cached: the WFM may
 * have changed since): an unflawed SVID for an admitted client id must be served, else the
 * configured CA does not mint what the WFM accepts and every negative check would pass for the
 * wrong reason (that is a harness/configuration error, not a finding).
 */
async function domainControl(ctx: WfmCtx, t: CheckTools, minter: Minter): Promise<void> {
  const id = wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, ctx.clients[0].clientId);
  const wire = ctx.connect(await minter.clientSvid(id), "control: minted SVID of client a");
  try {
    const a = await attempt(t, wire, { ...MANIFEST_GET, fresh: true });
    if (a.kind !== "response" || a.res.status !== 200)
      throw new HarnessSetupError(
        `wfm.ca mints SVIDs the WFM does not accept (control request: ${describe(a)}); check wfm.ca`,
      );
  } finally {
    wire.close();
  }
}

function needDomainMinter(ctx: WfmCtx, t: CheckTools): Minter {
  if (!ctx.domainMinter) t.skip("needs wfm.ca (the WFM's CA) to mint in-domain certificates");
  return ctx.domainMinter;
}

const flawChecks: Array<{ flaw: Flaw; what: string; requirements: string[] }> = [
  { flaw: "expired", what: "an expired client SVID", requirements: ["wfm-009"] },
  { flaw: "not-yet-valid", what: "a not-yet-valid client SVID", requirements: ["wfm-009"] },
  { flaw: "ca-true", what: "a client leaf with cA=true", requirements: ["wfm-010"] },
  { flaw: "key-cert-sign", what: "a client leaf with keyCertSign", requirements: ["wfm-010"] },
  { flaw: "two-uris", what: "a client leaf with two URI SANs", requirements: ["wfm-010"] },
  { flaw: "no-uri", what: "a client leaf without a URI SAN", requirements: ["wfm-010"] },
  { flaw: "rsa-2048", what: "a client leaf with a 2048-bit RSA key", requirements: ["wfm-011"] },
];

export const identityChecks = [
  wfmCheck({
    id: "wfm.identity.no-client-certificate-refused",
    title: "Without a client certificate every endpoint is refused (handshake failure or 4xx)",
    requirements: ["wfm-003", "wfm-015"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      await expectRefusedEverywhere(ctx, t, null, "no client certificate", "item 3, item 15");
    },
  }),
  wfmCheck({
    id: "wfm.identity.foreign-trust-domain-refused",
    title: "A client SVID of a foreign trust domain under an unknown root is refused",
    requirements: ["wfm-009", "wfm-006"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const id = `spiffe://${ctx.foreignMinter.trustDomain}/margo/wfm/${ctx.wfmId}/client/${ctx.clients[0].clientId}`;
      const creds = await ctx.foreignMinter.clientSvid(id);
      await expectRefusedEverywhere(ctx, t, creds, `foreign SVID ${id}`, "item 9, item 6");
    },
  }),
  wfmCheck({
    id: "wfm.identity.untrusted-root-refused",
    title:
      "A client SVID naming an admitted client of the WFM's trust domain, under an untrusted root, is refused",
    requirements: ["wfm-009"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      // The exact SPIFFE ID of an admitted client: only the anchor is wrong.
      const id = wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, ctx.clients[0].clientId);
      const creds = await ctx.foreignMinter.clientSvid(id);
      await expectRefusedEverywhere(ctx, t, creds, `untrusted-root SVID ${id}`, "item 9");
    },
  }),
  wfmCheck({
    id: "wfm.identity.wrong-spiffe-path-refused",
    title:
      "In-domain SVIDs whose SPIFFE ID is not .../margo/wfm/<this wfm>/client/<id> are refused",
    requirements: ["wfm-006"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const minter = needDomainMinter(ctx, t);
      await domainControl(ctx, t, minter);
      const td = ctx.trustDomain;
      const a = ctx.clients[0].clientId;
      const ids = [
        `spiffe://${td}/margo/wfm/${ctx.wfmId}/client/${a}/extra`,
        `spiffe://${td}/margo/wfm/${ctx.wfmId}-other/client/${a}`,
        `spiffe://${td}/operator/${a}`,
        `spiffe://${td}/margo/wfm/${ctx.wfmId}`,
        `spiffe://${td}/margo/wfm/${ctx.wfmId}/clients/${a}`,
      ];
      for (const id of ids)
        await expectRefused(ctx, t, await minter.clientSvid(id), `in-domain SVID ${id}`, "item 6");
    },
  }),
  ...flawChecks.map((f) =>
    wfmCheck({
      id: `wfm.identity.${f.flaw}-client-svid-refused`,
      title: `${f.what[0]?.toUpperCase()}${f.what.slice(1)} of an admitted client is refused`,
      requirements: f.requirements,
      level: "MUST",
      async run(ctx: WfmCtx, t: CheckTools) {
        const minter = needDomainMinter(ctx, t);
        await domainControl(ctx, t, minter);
        const id = wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, ctx.clients[0].clientId);
        const item = f.requirements.map((r) => `item ${Number(r.slice(4))}`).join(", ");
        await expectRefused(ctx, t, await minter.clientSvid(id, f.flaw), f.what, item);
      },
    }),
  ),
  wfmCheck({
    id: "wfm.identity.unaccepted-client-denied",
    title: "A validly authenticated client the WFM has not accepted (or has retired) is denied",
    requirements: ["wfm-007"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const { creds, actor } = await deniedClient(ctx, t);
      await expectRefusedEverywhere(ctx, t, creds, actor, "item 7");
    },
  }),
  wfmCheck({
    id: "wfm.identity.unaccepted-client-403-not-authorized",
    title: "The denial of a not-accepted client is 403 with problem type #not-authorized",
    requirements: ["wfm-007s"],
    level: "SHOULD",
    async run(ctx: WfmCtx, t: CheckTools) {
      const { creds, actor } = await deniedClient(ctx, t);
      const wire = ctx.connect(creds, actor);
      try {
        const a = await attempt(t, wire, {
          method: "GET",
          path: "/api/v1/deployments",
          headers: { accept: MANIFEST_MEDIA_TYPE },
          fresh: true,
        });
        t.expect(
          a.kind === "response" && a.res.status === 403,
          `${actor}: expected HTTP 403 (item 7, SHOULD), got ${describe(a)}`,
        );
        const type = problemType(a.res);
        t.expect(
          isMargoType(type, "not-authorized"),
          `${actor}: expected problem type ...#not-authorized (item 7), got ${type ?? "none"}`,
        );
      } finally {
        wire.close();
      }
    },
  }),
  wfmCheck({
    id: "wfm.identity.caller-from-spiffe-id-only",
    title: "Headers and query parameters naming another client do not change who the caller is",
    requirements: ["wfm-004"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const [a, b] = ctx.clients;
      const placed = await deployApp(ctx, t, "idonly", { client: a });
      const own = await a.wire.request(t, {
        method: "GET",
        path: "/api/v1/deployments",
        headers: { accept: MANIFEST_MEDIA_TYPE },
      });
      if (own.status !== 200 || !own.body.toString("utf8").includes(placed.deploymentId))
        throw new HarnessSetupError(
          `setup: client a's own manifest does not list ${placed.deploymentId} (HTTP ${own.status})`,
        );
      const leafB64 = (a.credentials.chainPem.split("-----END CERTIFICATE-----")[0] ?? "")
        .replace(/-----BEGIN CERTIFICATE-----/, "")
        .replace(/\s+/g, "");
      const spoof = await b.wire.request(t, {
        method: "GET",
        path: `/api/v1/deployments?clientId=${encodeURIComponent(a.clientId)}`,
        headers: {
          accept: MANIFEST_MEDIA_TYPE,
          "client-cert": `:${leafB64}:`,
          "x-client-id": a.clientId,
          "x-forwarded-client-cert": `URI=${wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, a.clientId)}`,
        },
      });
      t.note(`client b with client a named in query and headers: HTTP ${spoof.status}`);
      t.expect(
        !(spoof.status >= 200 && spoof.status < 300) ||
          !spoof.body.toString("utf8").includes(placed.deploymentId),
        `client b, naming client a in a query parameter and Client-Cert/X-Client-Id headers, was served client a's manifest with deployment ${placed.deploymentId} (item 4: the caller is the SPIFFE ID of the TLS client certificate only)`,
      );
      const etag = header(spoof, "etag");
      if (etag && etag === header(own, "etag"))
        t.fail(`client b got client a's manifest ETag ${etag} (item 4)`);
    },
  }),
  wfmCheck({
    id: "wfm.identity.resumption-ends-with-validity",
    title: "A new connection after the client SVID expired is refused, resumed session or not",
    requirements: ["wfm-013"],
    level: "MUST",
    timeoutMs: 30_000,
    async run(ctx: WfmCtx, t: CheckTools) {
      const mint = extrasOf(ctx)?.shortLivedSvid;
      if (!mint) t.skip("needs wfm.ca (the WFM's CA) to mint a short-lived client SVID");
      const id = wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, ctx.clients[0].clientId);
      const notAfter = new Date(Date.now() + 3_000);
      const creds = await mint(id, notAfter);
      // One keep-alive client: its agent caches the TLS session and offers it on the next
      // connection, which is what a resuming device does.
      const wire = ctx.connect(creds, "client a, SVID valid for 3 s");
      try {
        const first = await attempt(t, wire, MANIFEST_GET);
        if (first.kind !== "response" || first.res.status !== 200)
          throw new HarnessSetupError(
            `setup: the short-lived SVID was not served while valid: ${describe(first)}`,
          );
        wire.close(); // drop the connection, keep the session cache
        const wait = notAfter.getTime() + 1_100 - Date.now();
        if (wait > 0) await sleep(wait, t.signal);
        const after = await attempt(t, wire, MANIFEST_GET);
        t.expect(
          isRefusal(after),
          `after the client SVID expired (${notAfter.toISOString()}), a new connection was served: ${describe(after)}; a resumed session must not extend authentication beyond the certificate's validity (item 13)`,
        );
        t.note(`after expiry: ${describe(after)}`);
      } finally {
        wire.close();
      }
    },
  }),
  wfmCheck({
    id: "wfm.identity.issued-spiffe-ids-well-formed",
    title:
      "The WFM's own server SVID carries a MIAF name: /margo/wfm/<wfm-id>, unreserved segments",
    // Item 16 binds the MIS and the client; no WFM requirement in the catalogue says what the
    // WFM's own SVID must look like (see the report). Only the WFM's server SVID is judged, never
    // client certificates from the vendor's provisioning command (that is the MIS's output).
    requirements: ["mis-016"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const res = await ctx.clients[0].wire.request(t, MANIFEST_GET);
      const uris = serverUris(res.tls.peerChainDer[0]).map((u) => ({ u, role: "wfm" as const }));
      if (uris.length === 0) t.fail("the WFM's server certificate carries no URI SAN (item 16)");
      const bad: string[] = [];
      for (const { u, role } of uris) {
        const problem = miafProblem(u, role, ctx.trustDomain);
        if (problem) bad.push(`${u}: ${problem}`);
      }
      t.note(`judged ${uris.map((x) => x.u).join(", ")}`);
      t.expect(bad.length === 0, `the WFM's server SPIFFE ID breaks item 16: ${bad.join("; ")}`);
    },
  }),
];

const MANIFEST_GET: WireRequest = {
  method: "GET",
  path: "/api/v1/deployments",
  headers: { accept: MANIFEST_MEDIA_TYPE },
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new Error("aborted"));
      },
      { once: true },
    );
  });
}

function serverUris(leaf: Buffer | undefined): string[] {
  return leaf ? readCertificate(leaf).uris : [];
}

const UNRESERVED = /^[A-Za-z0-9._~-]+$/;

/** Why a SPIFFE ID is not a MIAF name of this role (item 16), or undefined. */
export function miafProblem(
  uri: string,
  role: "wfm" | "client",
  trustDomain: string,
): string | undefined {
  const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(uri);
  if (!m) return "not a spiffe:// URI";
  if (m[1] !== trustDomain) return `trust domain ${m[1]}, expected ${trustDomain}`;
  const segs = (m[2] ?? "").split("/").slice(1);
  if (segs[0] !== "margo") return "path does not start with /margo/";
  const want = role === "wfm" ? 3 : 5;
  if (segs.length !== want || segs[1] !== "wfm" || (role === "client" && segs[3] !== "client"))
    return `path is not /margo/wfm/<wfm-id>${role === "client" ? "/client/<client-id>" : ""}`;
  const ids = role === "wfm" ? [segs[2]] : [segs[2], segs[4]];
  for (const id of ids) {
    if (!id) return "empty id segment";
    if (id === "." || id === "..") return `id segment "${id}"`;
    if (!UNRESERVED.test(id))
      return `id segment "${id}" has characters outside RFC 3986 unreserved`;
  }
  return undefined;
}

/**
 * Credentials of a client the WFM must deny: a spare client admitted and then retired (when the
 * vendor configured both commands), else an in-domain SVID for a client id never admitted.
 */
async function deniedClient(
  ctx: WfmCtx,
  t: CheckTools,
): Promise<{ creds: Credentials; actor: string }> {
  const retired = extrasOf(ctx)?.retiredClient;
  if (retired) {
    const r = await retired();
    t.note(
      `client ${r.client.clientId} was admitted, served (HTTP ${r.servedBefore}), then retired with retireCommand`,
    );
    return { creds: r.client.credentials, actor: `retired client ${r.client.clientId}` };
  }
  if (ctx.domainMinter) {
    await domainControl(ctx, t, ctx.domainMinter);
    const clientId = `conf-never-admitted-${randomBytes(3).toString("hex")}`;
    const creds = await ctx.domainMinter.clientSvid(
      wfmClientSpiffeId(ctx.trustDomain, ctx.wfmId, clientId),
    );
    return { creds, actor: `never-admitted client ${clientId}` };
  }
  return t.skip(
    "needs wfm.clients.provisionCommand + retireCommand, or wfm.ca, to present a valid but unaccepted client",
  );
}
