/**
 * wfm.trust (item 17): the trust bundle and discovery endpoints, when the vendor names them. They
 * take no client authentication; the harness authenticates the server with the trust anchors it
 * was given (SVID of the trust domain) or, failing that, the ordinary host-name check.
 */
import { anchorsFromBundleJson, BundleError } from "@margo/proto/identity";
import { parseJson } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type { WfmCtx, WireResponse } from "../context.js";
import { extrasOf } from "../identity/extras.js";
import { attempt, describe } from "../wire/outcome.js";
import { bodyHint, header, isObject, member, wfmCheck } from "./support.js";

type Which = "bundleUrl" | "discoveryUrl";

function endpoint(ctx: WfmCtx, t: CheckTools, which: Which): string {
  const url = extrasOf(ctx)?.[which];
  if (!url) t.skip(`wfm.${which} is not configured`);
  return url;
}

async function fetchTrust(
  ctx: WfmCtx,
  t: CheckTools,
  url: string,
  headers: Record<string, string> = {},
): Promise<WireResponse> {
  const u = new URL(url);
  t.expect(u.protocol === "https:", `${url} is not HTTPS (item 17)`);
  const extras = extrasOf(ctx);
  if (!extras) throw new Error("suite extras missing");
  const wire = extras.connectOrigin(u.origin, "trust endpoint client (no client certificate)");
  try {
    const a = await attempt(t, wire, { method: "GET", path: `${u.pathname}${u.search}`, headers });
    t.expect(a.kind === "response", `GET ${url}: ${describe(a)} (item 17: served over HTTPS)`);
    return a.res;
  } finally {
    wire.close();
  }
}

/** ETag on the 200, then a conditional GET with it must be 304 with no body. */
async function expectConditional(ctx: WfmCtx, t: CheckTools, which: Which): Promise<void> {
  const url = endpoint(ctx, t, which);
  const first = await fetchTrust(ctx, t, url);
  t.expect(first.status === 200, `GET ${url}: HTTP ${first.status}${bodyHint(first)}`);
  const etag = header(first, "etag");
  t.expect(etag !== undefined && etag !== "", `GET ${url} has no ETag (item 17)`);
  const second = await fetchTrust(ctx, t, url, { "if-none-match": etag });
  t.expect(
    second.status === 304,
    `GET ${url} with If-None-Match ${etag} answered ${second.status}; item 17 requires 304`,
  );
  t.expect(
    second.body.length === 0,
    `the 304 for ${url} carries a body (${second.body.length} bytes)`,
  );
}

export const trustChecks = [
  wfmCheck({
    id: "wfm.trust.bundle-is-spiffe-bundle",
    title: "The trust bundle is served over HTTPS as a SPIFFE bundle with x509-svid keys",
    requirements: ["mis-017"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const url = endpoint(ctx, t, "bundleUrl");
      const res = await fetchTrust(ctx, t, url);
      t.expect(res.status === 200, `GET ${url}: HTTP ${res.status}${bodyHint(res)} (item 17)`);
      const tree = parseJson(res.body).value;
      t.expect(isObject(tree), `the bundle at ${url} is not a JSON object (item 17)`);
      const keys = member(tree, "keys");
      t.expect(
        Array.isArray(keys),
        `the bundle has no "keys" array (SPIFFE bundle format, item 17)`,
      );
      const svidKeys = keys.filter((k) => member(k, "use") === "x509-svid");
      t.expect(svidKeys.length > 0, `the bundle has no key with use "x509-svid" (item 17)`);
      for (const [i, k] of svidKeys.entries()) {
        const x5c = member(k, "x5c");
        t.expect(
          Array.isArray(x5c) && x5c.length === 1 && typeof x5c[0] === "string",
          `x509-svid key ${i} must carry exactly one certificate in x5c (SPIFFE bundle format, item 17)`,
        );
      }
      try {
        const { anchors } = anchorsFromBundleJson(res.body);
        t.note(`${anchors.length} x509-svid anchor(s)`);
      } catch (e) {
        if (e instanceof BundleError)
          t.fail(`the bundle is not a valid SPIFFE bundle: ${e.message} (item 17)`);
        throw e;
      }
    },
  }),
  wfmCheck({
    id: "wfm.trust.bundle-etag-304",
    title: "The trust bundle has an ETag and answers If-None-Match with 304",
    requirements: ["mis-017"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      await expectConditional(ctx, t, "bundleUrl");
    },
  }),
  wfmCheck({
    id: "wfm.trust.discovery-document",
    title: "Discovery names the trust domain and an HTTPS trustBundleUri",
    requirements: ["mis-017", "mis-100"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const url = endpoint(ctx, t, "discoveryUrl");
      const res = await fetchTrust(ctx, t, url);
      t.expect(res.status === 200, `GET ${url}: HTTP ${res.status}${bodyHint(res)} (item 17)`);
      const tree = parseJson(res.body).value;
      const td = member(tree, "trustDomain");
      const uri = member(tree, "trustBundleUri");
      t.expect(typeof td === "string", `discovery has no string trustDomain (item 17)`);
      t.expect(typeof uri === "string", `discovery has no string trustBundleUri (item 17)`);
      t.expect(
        uri.startsWith("https://"),
        `discovery trustBundleUri ${uri} is not HTTPS (item 17)`,
      );
      t.expect(
        td === ctx.trustDomain,
        `discovery names trust domain ${td}, but the WFM's SVID is in ${ctx.trustDomain}`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.trust.discovery-etag-304",
    title: "Discovery has an ETag and answers If-None-Match with 304",
    requirements: ["mis-017"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      await expectConditional(ctx, t, "discoveryUrl");
    },
  }),
];
