/**
 * device.identity: the device authenticates the WFM before it trusts anything it says (items 8,
 * 9, 10, 18). For each bad server identity the harness serves a deployment behind it and shows
 * that the device made no request beyond its handshake attempts and deployed nothing, then that it
 * recovers once the right identity is back (so the refusal was about the identity, not a crash).
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx, ServerIdentity } from "../context.js";
import { containersOf, deviceCheck } from "./support.js";
import {
  attemptsSince,
  fetchedProbe,
  isManagementRequest,
  maxSeq,
  publishProbe,
  refusalWindow,
} from "./tls-support.js";

/** How long the device gets to fetch the probe once the good identity is back. */
const RECOVER_MS = 15_000;

function refusesIdentity(c: {
  what: string;
  kind: Exclude<ServerIdentity, "good">;
  requirements: string[];
  title: string;
  rule: string;
}): Check<DeviceCtx> {
  return deviceCheck({
    id: `device.identity.refuses-${c.what}`,
    title: c.title,
    requirements: c.requirements,
    async run(ctx: DeviceCtx, t: CheckTools) {
      const from = Date.now();
      await ctx.wfm.presentIdentity(c.kind);
      const seq0 = maxSeq(ctx);
      const probe = publishProbe(ctx);
      t.note(
        `presenting the ${c.kind} identity; serving deployment ${probe.deploymentId} behind it`,
      );
      const refused = await refusalWindow(ctx, t, from);
      const through = ctx.wfm.requests().filter((r) => r.seq > seq0 && isManagementRequest(r));
      t.expect(
        through.length === 0,
        `the device sent ${through.length} request(s) to a WFM presenting ${c.rule}; it must abort the connection (${c.requirements.join(", ")})`,
        { requests: through.map((r) => `${r.method} ${r.path} -> ${r.status}`) },
      );
      if (ctx.engine) {
        const mine = containersOf(await ctx.engine.containers(t), probe.deploymentId);
        t.expect(
          mine.length === 0,
          `the device created ${mine.length} container(s) for a deployment served behind ${c.rule}`,
        );
      }
      t.note(
        `${refused} refused connection attempt(s): ${attemptsSince(ctx, from)
          .slice(0, 3)
          .map((f) => f.message)
          .join("; ")}`,
      );
      // Recovery: the same deployment, now behind the right identity.
      const seq1 = maxSeq(ctx);
      await ctx.wfm.presentIdentity("good");
      await ctx.wfm.waitFor(
        t,
        `the device to fetch deployment ${probe.deploymentId} once the WFM presents its true identity again (it refused, but must recover)`,
        () => fetchedProbe(ctx, probe, seq1),
        RECOVER_MS,
      );
    },
  });
}

/**
 * Item 11 on the first exchange: the harness provisions an ECDSA P-256 client SVID and presents an
 * ECDSA P-256 server SVID, so a device that completed the handshake with it and sent a request
 * accepted a P-256 server SVID, and the leaf it presented must be that P-256 key (an RSA key, if
 * any, of at least 3072 bits). Costs nothing beyond beforeEach: Configure already waited for it.
 */
const p256Svids = deviceCheck({
  id: "device.identity.p256-svids",
  title: "The device presents an ECDSA P-256 SVID and accepts the WFM's ECDSA P-256 SVID",
  requirements: ["device-011"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const first = await ctx.wfm.waitFor(
      t,
      "the device's first request on the Management Interface (the WFM presents an ECDSA P-256 SVID)",
      () => ctx.wfm.requests().find((r) => isManagementRequest(r) && r.tlsKeys?.server),
      10_000,
    );
    const { client, server } = first.tlsKeys ?? {};
    t.note(
      `first request ${first.method} ${first.path}: the device presented a leaf with key ${client ?? "none"}; the WFM presented ${server}`,
    );
    // The harness's own set-up, not the device's doing: an error, not a finding.
    if (server !== "ec P-256")
      throw new Error(
        `the instrumented WFM presented ${server}, not the ECDSA P-256 SVID it mints`,
      );
    const rsaBits = /^rsa (\d+)$/.exec(client ?? "")?.[1];
    t.expect(
      client === "ec P-256" || (rsaBits !== undefined && Number(rsaBits) >= 3072),
      `item 11: the device must present an ECDSA P-256 SVID (any RSA key at least 3072 bits); the leaf it presented has key ${client ?? "none (no client certificate)"}`,
    );
  },
});

export const identityChecks: readonly Check<DeviceCtx>[] = [
  p256Svids,
  refusesIdentity({
    what: "wrong-wfm-id",
    kind: "wrong-wfm-id",
    requirements: ["device-008"],
    title: "The device refuses a WFM whose SPIFFE ID is not the one derived from its own SVID",
    rule: "a valid SVID of the trust domain with another WFM id (spiffe://<td>/margo/wfm/<other>)",
  }),
  refusesIdentity({
    what: "untrusted-ca",
    kind: "untrusted-ca",
    requirements: ["device-009", "device-018"],
    title: "The device refuses a WFM certificate that does not chain to its trust bundle",
    rule: "the right SPIFFE ID issued by a CA outside the trust bundle",
  }),
  refusesIdentity({
    what: "expired",
    kind: "expired",
    requirements: ["device-009"],
    title: "The device refuses an expired WFM certificate",
    rule: "the right SPIFFE ID and CA with notAfter in the past",
  }),
  refusesIdentity({
    what: "ca-leaf",
    kind: "ca-leaf",
    requirements: ["device-010"],
    title: "The device refuses a WFM leaf certificate with cA=true",
    rule: "a leaf with basicConstraints cA=true (and keyCertSign)",
  }),
];
