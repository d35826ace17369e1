import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { OciClient, pushApplicationPackage, readPackageDir } from "@margo/proto/oci";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isWfmError, type WfmError } from "../src/core/errors.js";
import { type CoreHarness, FIXTURE_APPS, openCore } from "./support/core.js";

/**
 * Application registration against the real registry: a fixture package is published in the
 * test (to a repository no other test uses), then pulled, verified and validated by the core.
 */

const registry = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const oci = new OciClient({ registry });

async function caught(p: Promise<unknown>): Promise<WfmError> {
  try {
    await p;
  } catch (err) {
    if (isWfmError(err)) return err;
    throw err;
  }
  throw new Error("expected a WfmError, the call succeeded");
}

function freshRepo(): string {
  return `wfm-core-test/${randomBytes(6).toString("hex")}/package`;
}

let h: CoreHarness;
beforeEach(async () => {
  h = await openCore();
});
afterEach(async () => {
  await h.cleanup();
});

describe("registerApplication", () => {
  it("pulls a published package, keeps margo.yaml exactly and is idempotent for the same digest", async () => {
    const repo = freshRepo();
    const files = await readPackageDir(join(FIXTURE_APPS, "compose-multi"));
    const pushed = await pushApplicationPackage(oci, repo, files);
    const ref = `${registry}/${repo}:2.1.0`;
    const app = await h.core.registerApplication(ref, true);
    expect(app.applicationId).toBe("compose-multi");
    expect(app.version).toBe("2.1.0");
    expect(app.manifestDigest).toBe(pushed.digest);
    expect(app.ociReference).toBe(ref);
    const margoYaml = files.find((f) => f.path === "margo.yaml");
    expect(app.descriptionYaml.equals(Buffer.from(margoYaml?.bytes ?? []))).toBe(true);
    expect(app.description?.deploymentProfiles[0]?.components.map((c) => c.name)).toEqual([
      "store",
      "api",
      "web",
    ]);
    const again = await h.core.registerApplication(`${registry}/${repo}@${pushed.digest}`, true);
    expect(again.manifestDigest).toBe(pushed.digest);
    expect((await h.core.listApplications()).length).toBe(1);
    // The registered package deploys.
    await h.core.addClient("alpha");
    const d = await h.core.createDeployment({
      applicationId: "compose-multi",
      clientId: "alpha",
      deviceId: "dev1",
    });
    expect(d.version).toBe("2.1.0");
  });

  it("refuses the same id and version from a different package (conflict)", async () => {
    const files = await readPackageDir(join(FIXTURE_APPS, "compose-multi"));
    const first = freshRepo();
    await pushApplicationPackage(oci, first, files);
    await h.core.registerApplication(`${registry}/${first}:2.1.0`, true);
    const second = freshRepo();
    // Same description, different package bytes: a manifest annotation changes its digest.
    await pushApplicationPackage(oci, second, files, { annotations: { "test.nonce": second } });
    const err = await caught(h.core.registerApplication(`${registry}/${second}:2.1.0`, true));
    expect(err.kind).toBe("conflict");
  });

  it("an invalid description is semantic-error listing every problem, and nothing is stored", async () => {
    const repo = freshRepo();
    const files = await readPackageDir(join(FIXTURE_APPS, "compose-multi"));
    const broken = files.map((f) =>
      f.path === "margo.yaml"
        ? {
            ...f,
            bytes: Buffer.from(
              Buffer.from(f.bytes)
                .toString()
                .replace("id: compose-multi", "id: Compose_Multi")
                .replace(
                  "revision: 2.1.0\n          wait: true\n          timeout: 1m30s",
                  "revision: 2.1.0\n          wait: true\n          timeout: soon",
                ),
            ),
          }
        : f,
    );
    await pushApplicationPackage(oci, repo, broken);
    const err = await caught(h.core.registerApplication(`${registry}/${repo}:2.1.0`, true));
    expect(err.kind).toBe("semantic-error");
    expect(err.errors.length).toBeGreaterThanOrEqual(2);
    expect(err.errors.some((e) => e.field.startsWith("margo.yaml#/id"))).toBe(true);
    expect(err.errors.some((e) => e.field.includes("/timeout"))).toBe(true);
    expect(await h.core.listApplications()).toEqual([]);
  });

  it("an unknown tag is not-found; an unreachable registry is unavailable with a retry hint", async () => {
    const missing = await caught(
      h.core.registerApplication(`${registry}/${freshRepo()}:9.9.9`, true),
    );
    expect(missing.kind).toBe("not-found");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const down = await caught(h.core.registerApplication("127.0.0.1:1/some/package:1.0.0", true));
    expect(down.kind).toBe("unavailable");
    expect(down.retryAfterSeconds).toBe(5);
  });

  it("a malformed reference is semantic-error at /ociReference", async () => {
    for (const bad of ["no-slash", `${registry}/Upper/Case:1.0.0`, `${registry}/repo`]) {
      const err = await caught(h.core.registerApplication(bad, true));
      expect(err.kind).toBe("semantic-error");
      expect(err.errors[0]?.field).toBe("/ociReference");
    }
  });
});
