import { fixturePackageOptions, listFixtures } from "@margo/fixtures";
import type { admin } from "@margo/proto";
import { OciClient, publishPackageDir } from "@margo/proto/oci";
import { validatePackageDir } from "@margo/proto/package";
import type { Northbound } from "../../src/core/api.js";

/** The registry tests publish to (bootstrap runs it on loopback). */
export const TEST_REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";

const published = new Map<string, Promise<string>>();

/**
 * Publish a valid fixture app (by folder name under fixtures/apps, e.g. "compose-single") to the
 * test registry once per process and return its package reference `<registry>/<repo>:<tag>`.
 * Publishing is idempotent (same bytes, same digests), so parallel test files do not clash.
 */
export function publishFixtureApp(name: string): Promise<string> {
  let p = published.get(name);
  if (!p) {
    p = (async () => {
      const f = listFixtures().valid.find((x) => x.name === name);
      if (!f) throw new Error(`no valid fixture named ${name}`);
      const checked = await validatePackageDir(f.dir, fixturePackageOptions(f));
      const appId = checked.doc?.id ?? name;
      const client = new OciClient({ registry: TEST_REGISTRY });
      const pub = await publishPackageDir(client, f.dir, {
        packageRepo: `margo-fixtures/${appId}/package`,
      });
      return `${TEST_REGISTRY}/${pub.pkg.repository}:${pub.pkg.tag}`;
    })();
    published.set(name, p);
  }
  return p;
}

/** Publish (once) and register a fixture app with a WFM core over plain HTTP (loopback registry). */
export async function registerFixtureApp(
  core: Northbound,
  name: string,
): Promise<admin.Application> {
  return core.registerApplication(await publishFixtureApp(name), true);
}
