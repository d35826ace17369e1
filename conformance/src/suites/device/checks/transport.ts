/**
 * device.transport: how the device's TLS looks from the WFM's side (items 2 and 12). Judged from
 * the instrumented WFM's records of each connection (negotiated protocol, client chain), never
 * from what the device reports.
 */
import type { Check, CheckTools } from "../../../core/types.js";
import type { DeviceCtx } from "../context.js";
import { deviceCheck } from "./support.js";
import { attemptsSince, isManagementRequest, refusalWindow } from "./tls-support.js";

/** How long the device gets to come back once the WFM offers a good handshake again (covers backoff). */
const RECOVER_MS = 15_000;

/** Wait for the device's first request on the Management Interface (or fail with what TLS saw). */
async function firstRequest(ctx: DeviceCtx, t: CheckTools, why: string) {
  const r = await ctx.wfm
    .waitFor(
      t,
      "a request of the device on the Management Interface",
      () => ctx.wfm.requests().find(isManagementRequest),
      10_000,
    )
    .catch((e: unknown) => {
      const failures = ctx.wfm.tlsFailures().slice(-5);
      if (failures.length > 0) {
        t.fail(
          `no request came through: the device's handshakes with the instrumented WFM failed (${why})`,
          {
            tlsFailures: failures,
          },
        );
      }
      throw e;
    });
  return r;
}

const tls13 = deviceCheck({
  id: "device.transport.tls13-negotiated",
  title: "The device negotiates TLS 1.3 when the WFM offers it",
  requirements: ["device-002"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    const r = await firstRequest(ctx, t, "item 2");
    t.note(`first request ${r.method} ${r.path} over ${r.tlsProtocol}`);
    t.expect(
      r.tlsProtocol === "TLSv1.3",
      `the WFM offered TLS 1.2 and 1.3, the device negotiated ${r.tlsProtocol}: item 2 requires TLS 1.3 by default (1.2 only as a fallback)`,
    );
    const older = ctx.wfm
      .requests()
      .filter((q) => isManagementRequest(q) && q.tlsProtocol !== "TLSv1.3");
    t.expect(
      older.length === 0,
      `${older.length} request(s) came over ${older[0]?.tlsProtocol} although TLS 1.3 was offered (item 2)`,
    );
  },
});

const chain = deviceCheck({
  id: "device.transport.presents-intermediate",
  title: "The device presents its leaf SVID together with the intermediate it needs",
  requirements: ["device-012"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    // The client SVID is issued by an intermediate and the WFM trusts only the root: a device
    // that sends the leaf alone cannot complete the handshake at all.
    const r = await firstRequest(
      ctx,
      t,
      "the WFM trusts only the root, so the client must send leaf + intermediate (item 12)",
    );
    t.note(`client chain as verified by the WFM: ${r.clientChainLength} certificate(s)`);
    t.expect(
      r.clientChainLength >= 2,
      `the device presented ${r.clientChainLength} certificate(s); item 12 requires the leaf and the intermediate that issued it`,
    );
  },
});

const noOldTls = deviceCheck({
  id: "device.transport.refuses-tls11",
  title: "The device refuses a WFM that offers only TLS 1.0/1.1",
  requirements: ["device-002"],
  async run(ctx: DeviceCtx, t: CheckTools) {
    await firstRequest(ctx, t, "before the TLS 1.1 offer");
    const from = Date.now();
    await ctx.wfm.presentIdentity("good", { maxTlsVersion: "TLSv1.1" });
    t.note("the WFM now offers TLS 1.0-1.1 only");
    const seqBefore = ctx.wfm.requests().reduce((m, r) => Math.max(m, r.seq), 0);
    await refusalWindow(ctx, t, from);
    const through = ctx.wfm.requests().filter((r) => r.seq > seqBefore && isManagementRequest(r));
    t.expect(
      through.length === 0,
      `the device sent ${through.length} request(s) over ${through[0]?.tlsProtocol} to a WFM offering only TLS 1.0/1.1: item 2 forbids TLS 1.0/1.1`,
      { requests: through.map((r) => `${r.method} ${r.path} ${r.tlsProtocol}`) },
    );
    const refusedCount = attemptsSince(ctx, from).length;
    t.note(`${refusedCount} refused handshake(s) seen`);
    // Zero requests through proves nothing if the device had simply stopped polling: it must come
    // back once the WFM offers TLS 1.2/1.3 with the same good identity again.
    const seqBack = ctx.wfm.requests().reduce((m, r) => Math.max(m, r.seq), 0);
    await ctx.wfm.presentIdentity("good");
    const back = await ctx.wfm
      .waitFor(
        t,
        "a request of the device on the Management Interface once the WFM offers TLS 1.2/1.3 again",
        () => ctx.wfm.requests().find((r) => r.seq > seqBack && isManagementRequest(r)),
        RECOVER_MS,
      )
      .catch(() => {
        // Not a finding on TLS 1.1: without a device that polls, the refusal was not observed.
        throw new Error(
          `the device sent no Management Interface request within ${RECOVER_MS} ms after the WFM offered TLS 1.2/1.3 again (${refusedCount} refused handshake(s) during the TLS 1.1 window): it stopped polling, so its refusal of TLS 1.0/1.1 could not be observed`,
        );
      });
    t.note(`recovered: ${back.method} ${back.path} over ${back.tlsProtocol}`);
  },
});

export const transportChecks: readonly Check<DeviceCtx>[] = [tls13, chain, noOldTls];
