import { X509Certificate } from "node:crypto";
import { type ChannelOptions, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { admin } from "@margo/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkWfmIdentity } from "../src/cli/admin-client.js";
import { call, problemOfError } from "./grpc-support.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

/**
 * The admin service over real mTLS against a whole WFM: rotation steps the CA's state refuses
 * come back as FAILED_PRECONDITION (retry once the state changed), not the ALREADY_EXISTS a plain
 * `conflict` maps to; IssueOperatorCredentials is operator-only and mints a working operator SVID.
 */

let wfm: TestWfm;
let operator: admin.ClientCredentials;

beforeAll(async () => {
  wfm = await startTestWfm({ grpc: true, config: { bundleRefreshHintSeconds: 3600 } });
  operator = await wfm.identity.mintOperator("admin");
});
afterAll(async () => {
  await wfm?.dispose();
});

function adminClient(creds: admin.ClientCredentials): admin.WfmAdminServiceClient {
  const options: ChannelOptions = { "grpc.ssl_target_name_override": "localhost" };
  return new admin.WfmAdminServiceClient(
    `127.0.0.1:${wfm.grpcPort}`,
    credentials.createSsl(
      Buffer.from(creds.trustBundlePem),
      Buffer.from(creds.privateKeyPem),
      Buffer.from(creds.certificateChainPem),
      { checkServerIdentity: (_h, cert) => checkWfmIdentity(cert, wfm.identity.wfmSpiffeId) },
    ),
    options,
  );
}

async function refusal(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as ServiceError;
  }
  throw new Error("the call succeeded");
}

describe("WfmAdminService rotation refusals", () => {
  it("digest 5.6: activate with nothing published, a second publish, and an early activate are FAILED_PRECONDITION", async () => {
    const c = adminClient(operator);
    try {
      const nothing = await refusal(call(c, c.activateNextAuthority, { force: false }));
      expect(nothing.code).toBe(status.FAILED_PRECONDITION);
      expect(problemOfError(nothing)?.detail).toContain("ca publish");

      const published = await call(c, c.publishNextAuthority, {});
      expect(published.status?.anchors).toHaveLength(2);

      const twice = await refusal(call(c, c.publishNextAuthority, {}));
      expect(twice.code).toBe(status.FAILED_PRECONDITION);
      expect(problemOfError(twice)?.detail).toContain("not active yet");

      const early = await refusal(call(c, c.activateNextAuthority, { force: false }));
      expect(early.code).toBe(status.FAILED_PRECONDITION);
      expect(problemOfError(early)?.detail).toContain("allowed from");

      // The same state accepts the step once it is allowed (here: forced), as the code promises.
      const forced = await call(c, c.activateNextAuthority, { force: true });
      expect(forced.status?.anchors[0]?.role).toBe(admin.TrustAnchorRole.TRUST_ANCHOR_ROLE_ISSUING);
    } finally {
      c.close();
    }
  });
});

describe("WfmAdminService.IssueOperatorCredentials", () => {
  it("mints an operator SVID from the issuing root that the admin service accepts", async () => {
    const c = adminClient(operator);
    let fresh: admin.ClientCredentials | undefined;
    try {
      const res = await call(c, c.issueOperatorCredentials, {
        name: "night-shift",
        lifetimeSeconds: 600,
      });
      fresh = res.credentials;
    } finally {
      c.close();
    }
    if (!fresh) throw new Error("no credentials");
    expect(fresh.spiffeId).toBe("spiffe://example.org/operator/night-shift");
    const leaf = new X509Certificate(fresh.certificateChainPem);
    const lifetime = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
    expect(lifetime).toBeLessThanOrEqual(600 + 120);
    const issuing = wfm.identity.authorityStatus().anchors[0]?.fingerprint;
    const issuer = (
      fresh.trustBundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ??
      []
    )
      .map((pem) => new X509Certificate(pem))
      .find((ca) => leaf.checkIssued(ca));
    expect(issuer?.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(issuing);
    const withFresh = adminClient(fresh);
    try {
      const listed = await call(withFresh, withFresh.listClients, {});
      expect(listed.clients).toEqual([]);
    } finally {
      withFresh.close();
    }
  });

  it("refuses a name that is no SPIFFE path segment, and any caller that is not an operator", async () => {
    const c = adminClient(operator);
    try {
      const bad = await refusal(
        call(c, c.issueOperatorCredentials, { name: "..", lifetimeSeconds: 0 }),
      );
      expect(bad.code).toBe(status.INVALID_ARGUMENT);
      expect(problemOfError(bad)?.errors?.[0]?.field).toBe("/name");
    } finally {
      c.close();
    }
    const device = adminClient(await wfm.admit("edge-op"));
    try {
      const refused = await refusal(
        call(device, device.issueOperatorCredentials, { name: "admin", lifetimeSeconds: 0 }),
      );
      expect(refused.code).toBe(status.PERMISSION_DENIED);
    } finally {
      device.close();
    }
  });
});
