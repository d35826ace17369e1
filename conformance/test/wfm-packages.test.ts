import { OciClient, pullApplicationPackage } from "@margo/proto/oci";
import { describe, expect, it } from "vitest";
import { CheckFailed, CheckSkipped, type CheckTools, type Outcome } from "../src/core/types.js";
import { packageChecks } from "../src/suites/wfm/checks/packages.js";
import {
  type WfmClient,
  type WfmCtx,
  type WfmDriver,
  WfmDriverRefused,
  type WireResponse,
} from "../src/suites/wfm/context.js";

// The two package-intake checks (items 74 and 80) against fake drivers: each must fail on the
// violation it is about, pass on a conformant behaviour and never turn the environment into a
// fail. The packages are really pushed to the registry; only the WFM is fake.

const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";

const check = (id: string) => {
  const c = packageChecks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}`);
  return c;
};
const UNSAFE = check("wfm.deployment.unsafe-archive-refused");
const PULLS = check("wfm.deployment.pulls-through-distribution-api");

function tools(): CheckTools & { notes: string[] } {
  const notes: string[] = [];
  return {
    notes,
    signal: new AbortController().signal,
    evidence() {},
    note: (s) => notes.push(s),
    fail(message, details) {
      throw new CheckFailed(message, details);
    },
    skip(reason) {
      throw new CheckSkipped(reason);
    },
    expect(cond, message, details) {
      if (!cond) throw new CheckFailed(message, details);
    },
    expectEqual(actual, expected, what) {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new CheckFailed(what);
    },
  };
}

const ok201: WireResponse = {
  status: 201,
  headers: {},
  body: Buffer.alloc(0),
  httpVersion: "1.1",
  tls: { protocol: null, cipher: null, peerChainDer: [] },
};

/** A WFM client whose capability PUTs always succeed (registerDevice needs one). */
const client: WfmClient = {
  clientId: "conf-test-a",
  credentials: { chainPem: "", keyPem: "" },
  wire: { actor: "fake", request: async () => ok201, close() {} },
};

/** Driver methods the checks use; the rest throw so a surprise use shows. */
function driver(over: Partial<WfmDriver>): WfmDriver {
  const no = async () => {
    throw new Error("not used");
  };
  return {
    info: no,
    reset: no,
    update: no,
    undeploy: no,
    statuses: no,
    capabilities: no,
    publish: async (ref) => ({ applicationId: ref.split("/")[2] ?? "x", version: "1.0.0" }),
    deploy: async () => ({ deploymentId: "dep-1" }),
    ...over,
  };
}

function ctx(d: WfmDriver, endpoint = "https://127.0.0.1:9443"): WfmCtx {
  const ref = `${REGISTRY}/margo-conformance/compose-single/package:1.0.0`;
  return {
    info: { vendor: "v", product: "p", version: "1", margoVersion: "rc.3", features: [], endpoint },
    driver: d,
    clients: [client, client],
    connect: () => client.wire,
    foreignMinter: { trustDomain: "x", clientSvid: async () => ({ chainPem: "", keyPem: "" }) },
    apps: async () => ({
      single: { applicationId: "compose-single", version: "1.0.0", ociReference: ref },
      multi: { applicationId: "compose-multi", version: "2.1.0", ociReference: ref },
    }),
    trustDomain: "t",
    wfmId: "w",
  };
}

async function outcome(
  c: typeof UNSAFE,
  x: WfmCtx,
): Promise<{ outcome: Outcome; message?: string }> {
  try {
    await c.run(x, tools());
    return { outcome: "pass" };
  } catch (e) {
    if (e instanceof CheckFailed) return { outcome: "fail", message: e.message };
    if (e instanceof CheckSkipped) return { outcome: "skip", message: e.message };
    return { outcome: "error", message: (e as Error).message };
  }
}

/** A fake WFM that really pulls the package through the reference it was given. */
async function pull(reference: string, plainHttp: boolean): Promise<void> {
  const m = /^([^/]+)\/(.+):([^:]+)$/.exec(reference);
  if (!m?.[1] || !m[2] || !m[3]) throw new Error(`bad reference ${reference}`);
  await pullApplicationPackage(new OciClient({ registry: m[1], plainHttp }), m[2], m[3]);
}

describe("wfm.deployment.unsafe-archive-refused (item 74)", () => {
  it("fails when the WFM publishes and deploys both hostile packages, naming the broken rules", async () => {
    const published: string[] = [];
    const r = await outcome(
      UNSAFE,
      ctx(
        driver({
          publish: async (ref) => {
            published.push(ref);
            return { applicationId: "x", version: "1.0.0" };
          },
        }),
      ),
    );
    expect(r.outcome).toBe("fail");
    expect(r.message).toContain("archive.path-traversal");
    expect(r.message).toContain("archive.link-escape");
    expect(published).toEqual([
      `${REGISTRY}/margo-conformance/archive-path-traversal/package:1.0.0`,
      `${REGISTRY}/margo-conformance/archive-escaping-symlink/package:1.0.0`,
    ]);
  }, 30_000);

  it("passes when the WFM refuses at publish, or accepts the publish but refuses the deploy", async () => {
    const refuse = async () => {
      throw new WfmDriverRefused("unsafe archive");
    };
    expect((await outcome(UNSAFE, ctx(driver({ publish: refuse })))).outcome).toBe("pass");
    expect((await outcome(UNSAFE, ctx(driver({ deploy: refuse })))).outcome).toBe("pass");
  }, 30_000);

  it("fails when only one of the two is refused", async () => {
    const r = await outcome(
      UNSAFE,
      ctx(
        driver({
          publish: async (ref) => {
            if (ref.includes("symlink")) throw new WfmDriverRefused("link escapes");
            return { applicationId: "x", version: "1.0.0" };
          },
        }),
      ),
    );
    expect(r.outcome).toBe("fail");
    expect(r.message).toContain("archive-path-traversal");
    expect(r.message).not.toContain("archive-escaping-symlink");
  }, 30_000);

  it("errors (never passes or fails) when the driver breaks for another reason", async () => {
    const r = await outcome(
      UNSAFE,
      ctx(
        driver({
          publish: async () => {
            throw new Error("driver connection lost");
          },
        }),
      ),
    );
    expect(r.outcome).toBe("error");
  }, 30_000);
});

describe("wfm.deployment.pulls-through-distribution-api (item 80)", () => {
  it("passes when the WFM pulls the package through the registry address it was given", async () => {
    const refs: string[] = [];
    const r = await outcome(
      PULLS,
      ctx(
        driver({
          publish: async (ref, plainHttp) => {
            refs.push(ref);
            await pull(ref, plainHttp);
            return { applicationId: "conformance-pull", version: "1.0.0" };
          },
        }),
      ),
    );
    expect(r).toEqual({ outcome: "pass" });
    expect(refs[0]).toMatch(
      /^127\.0\.0\.1:\d+\/margo-conformance\/conformance-pull\/package:1\.0\.0$/,
    );
  }, 30_000);

  it("passes for a WFM that pulls only when the package is first deployed", async () => {
    let ref = "";
    const r = await outcome(
      PULLS,
      ctx(
        driver({
          publish: async (r0) => {
            ref = r0;
            return { applicationId: "conformance-pull", version: "1.0.0" };
          },
          deploy: async () => {
            await pull(ref, true);
            return { deploymentId: "d" };
          },
        }),
      ),
    );
    expect(r).toEqual({ outcome: "pass" });
  }, 30_000);

  it("fails when the WFM also uses an endpoint outside distribution v1.1 (/v2/_catalog)", async () => {
    const r = await outcome(
      PULLS,
      ctx(
        driver({
          publish: async (ref, plainHttp) => {
            const host = ref.split("/")[0];
            await fetch(`http://${host}/v2/_catalog`);
            await pull(ref, plainHttp);
            return { applicationId: "conformance-pull", version: "1.0.0" };
          },
        }),
      ),
    );
    expect(r.outcome).toBe("fail");
    expect(r.message).toContain("GET /v2/_catalog");
  }, 30_000);

  it("fails when the WFM accepted the package without pulling it through the given registry", async () => {
    const r = await outcome(PULLS, ctx(driver({})));
    expect(r.outcome).toBe("fail");
    expect(r.message).toContain("did not pull it");
  }, 30_000);

  it("skips when the WFM cannot reach the proxy (no request, publish failed) or is not on this host", async () => {
    const unreachable = driver({
      publish: async () => {
        throw new WfmDriverRefused("registry unreachable");
      },
    });
    const r = await outcome(PULLS, ctx(unreachable));
    expect(r.outcome).toBe("skip");
    expect(r.message).toContain("cannot reach 127.0.0.1");
    const far = await outcome(PULLS, ctx(driver({}), "https://wfm.example.test:443"));
    expect(far.outcome).toBe("skip");
  }, 30_000);
});
