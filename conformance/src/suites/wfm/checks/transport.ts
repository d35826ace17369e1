/**
 * wfm.transport: how the Management Interface is reached (items 1, 2, 10-12): HTTP/1.1 on 443,
 * TLS 1.3 by default, a TLS 1.2 fallback only with RFC 9325 AEAD suites, no TLS 1.0/1.1, and a
 * server SVID that is valid, strong enough and presented with the chain to an anchor.
 */
import {
  keyInfoOf,
  readCertificate,
  SvidVerificationError,
  verifySvid,
} from "@margo/proto/identity";
import { MANIFEST_MEDIA_TYPE } from "@margo/proto/wire";
import type { CheckTools } from "../../../core/types.js";
import type { WfmCtx, WireRequest } from "../context.js";
import { extrasOf } from "../identity/extras.js";
import {
  type Attempt,
  attempt,
  describe,
  expectServed,
  NoVerdictTransportError,
  WfmNotAuthenticated,
} from "../wire/outcome.js";
import { probeTls } from "../wire/tls-probe.js";
import { wfmCheck } from "./support.js";

const MANIFEST: WireRequest = {
  method: "GET",
  path: "/api/v1/deployments",
  headers: { accept: MANIFEST_MEDIA_TYPE },
};

/** A request on client a that must be answered; a refused server identity fails the check. */
async function served(ctx: WfmCtx, t: CheckTools, req: WireRequest, requirement: string) {
  let a: Attempt;
  try {
    a = await attempt(t, ctx.clients[0].wire, req);
  } catch (e) {
    if (e instanceof WfmNotAuthenticated) t.fail(`${e.message} (${requirement})`);
    throw e;
  }
  return a;
}

/**
 * RFC 9325 section 4.2: TLS 1.2 only with ephemeral (EC)DHE key exchange and AEAD ciphers
 * (AES-GCM, ChaCha20-Poly1305). Node reports IANA names, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
 */
export function isRfc9325Tls12Suite(name: string): boolean {
  return /^TLS_(ECDHE|DHE)_(ECDSA|RSA)_WITH_/.test(name) && /(_GCM_|CHACHA20_POLY1305)/.test(name);
}

export const transportChecks = [
  wfmCheck({
    id: "wfm.transport.http11-port-443",
    title: "The Management Interface is HTTP/1.1 on TCP port 443",
    requirements: ["wfm-001"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const url = new URL(ctx.info.endpoint ?? "");
      const port = url.port === "" ? 443 : Number(url.port);
      t.expect(
        port === 443,
        `the configured Management Interface URL ${url.origin} is on port ${port}; item 1 requires 443`,
      );
      const a = await served(ctx, t, MANIFEST, "item 1");
      t.expect(a.kind === "response", `GET /api/v1/deployments got no response: ${describe(a)}`);
      t.expect(
        a.res.httpVersion === "1.1",
        `the answer was HTTP/${a.res.httpVersion}; item 1 requires HTTP/1.1`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.transport.tls13-by-default",
    title: "A client offering TLS 1.2 and 1.3 gets TLS 1.3",
    requirements: ["wfm-002"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const a = await served(
        ctx,
        t,
        { ...MANIFEST, tls: { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" } },
        "item 2",
      );
      t.expect(a.kind === "response", `the handshake offering TLS 1.2-1.3 failed: ${describe(a)}`);
      t.expect(
        a.res.tls.protocol === "TLSv1.3",
        `negotiated ${a.res.tls.protocol ?? "nothing"}; item 2 requires TLS 1.3 by default`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.transport.tls12-fallback-rfc9325",
    title: "A TLS 1.2-only client is refused or gets an RFC 9325 AEAD suite with (EC)DHE",
    requirements: ["wfm-002"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const a = await served(ctx, t, { ...MANIFEST, tls: { maxVersion: "TLSv1.2" } }, "item 2");
      if (a.kind === "refused") {
        t.note(`TLS 1.2-only client refused (${a.error.code}): allowed, the fallback is optional`);
        return;
      }
      t.expect(
        a.res.tls.protocol === "TLSv1.2",
        `a TLS 1.2-only client negotiated ${a.res.tls.protocol ?? "nothing"}`,
      );
      const cipher = a.res.tls.cipher ?? "";
      t.expect(
        isRfc9325Tls12Suite(cipher),
        `TLS 1.2 fallback negotiated ${cipher || "an unknown suite"}; RFC 9325 (item 2) requires an (EC)DHE AEAD suite (AES-GCM or ChaCha20-Poly1305)`,
      );
    },
  }),
  wfmCheck({
    id: "wfm.transport.legacy-tls-refused",
    title: "TLS 1.0 and TLS 1.1 handshakes are refused",
    requirements: ["wfm-002"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      for (const v of ["TLSv1", "TLSv1.1"] as const) {
        // Control: the same request with client a on a fresh default-TLS connection is served,
        // so a refusal below is about the protocol version only (not a WFM that is down).
        await expectServed(t, ctx.clients[0].wire, MANIFEST, "client a, default TLS");
        // SECLEVEL=0 lets this client actually offer the old versions (OpenSSL 3 would not).
        let a: Attempt;
        try {
          a = await served(
            ctx,
            t,
            {
              ...MANIFEST,
              fresh: true,
              tls: { minVersion: v, maxVersion: v, ciphers: "DEFAULT:@SECLEVEL=0" },
            },
            "item 2",
          );
        } catch (e) {
          if (
            e instanceof NoVerdictTransportError &&
            /NO_PROTOCOLS_AVAILABLE|UNSUPPORTED_PROTOCOL/.test(e.transport.code)
          )
            throw new Error(
              `this harness's TLS library cannot offer ${v} (${e.transport.code}); the check cannot run here`,
            );
          throw e;
        }
        t.expect(
          a.kind === "refused",
          `a ${v}-only client was served (${describe(a)}, negotiated ${a.kind === "response" ? a.res.tls.protocol : "-"}); item 2 forbids TLS 1.0/1.1`,
        );
        t.note(`${v}: refused (${a.kind === "refused" ? a.error.code : "-"})`);
      }
    },
  }),
  wfmCheck({
    id: "wfm.transport.server-svid-valid-and-strong",
    title: "The WFM presents a valid X.509-SVID with an ECDSA P-256 or RSA >= 3072 key",
    requirements: ["wfm-011", "wfm-010"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const a = await served(ctx, t, { ...MANIFEST, fresh: true }, "items 10, 11");
      t.expect(
        a.kind === "response",
        `no response to judge the server certificate: ${describe(a)}`,
      );
      const leaf = a.res.tls.peerChainDer[0];
      t.expect(leaf !== undefined, "the WFM presented no certificate");
      const key = keyInfoOf(readCertificate(leaf));
      const ok =
        (key.type === "ec" && key.curve === "P-256") || (key.type === "rsa" && key.bits >= 3072);
      t.expect(
        ok,
        `the WFM's SVID key is ${key.type === "ec" ? `EC ${key.curve}` : key.type === "rsa" ? `RSA ${key.bits}` : key.type}; item 11 requires ECDSA P-256 (or RSA >= 3072 bits)`,
      );
      t.note(`server SVID key: ${key.type === "ec" ? key.curve : key.type}`);
    },
  }),
  wfmCheck({
    id: "wfm.transport.server-chain-presented",
    title: "The certificates the WFM sends verify to an anchor of the bundle on their own",
    requirements: ["wfm-012"],
    level: "MUST",
    async run(ctx: WfmCtx, t: CheckTools) {
      const probe = await probeTls(ctx.info.endpoint ?? "", ctx.clients[0].credentials, t.signal);
      t.note(`presented ${probe.presented.length} certificate(s) over ${probe.protocol}`);
      const anchors = extrasOf(ctx)?.anchors;
      if (!anchors) throw new Error("the suite's trust anchors are not available to this check");
      // Only what was sent: a missing intermediate cannot be filled in from anywhere.
      const anchorSet = new Set(anchors.map((x) => x.toString("base64")));
      const sent = probe.presented.filter((c) => !anchorSet.has(c.toString("base64")));
      try {
        const v = verifySvid(sent, anchors, { trustDomain: ctx.trustDomain });
        t.note(`verified ${v.spiffeId}`);
      } catch (e) {
        if (e instanceof SvidVerificationError)
          t.fail(
            `the certificates the WFM presents do not verify to the trust bundle (${e.rule}: ${e.message}); item 12 requires leaf plus intermediates in the Certificate message`,
          );
        throw e;
      }
    },
  }),
];
