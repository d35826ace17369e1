/**
 * The application packages WFM checks deploy: the compose-single and compose-multi fixtures,
 * pushed to the configured registry under `margo-conformance/` (their component URIs rewritten to
 * match, so the descriptions point where the components really are) and published through the
 * driver. Pushing happens once per process (same bytes, same digests: idempotent); publishing
 * again after every driver reset, since a reset may forget the catalogue.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePackageOptions, listFixtures } from "@margo/fixtures";
import { OciClient, publishPackageDir } from "@margo/proto/oci";
import { validatePackageDir } from "@margo/proto/package";
import type { PublishedApps, WfmDriver } from "./context.js";

/** The fixture packages could not be pushed to the registry (environment, not the WFM). */
export class FixturePushError extends Error {
  override readonly name = "FixturePushError";
}

const APPS = { single: "compose-single", multi: "compose-multi" } as const;
const FIXTURE_PREFIX = /oci:\/\/[^/\s]+\/margo-fixtures\//g;

const pushed = new Map<string, Promise<string>>();

/**
 * Push one valid fixture (by folder name) to `<registry>/margo-conformance/...` once per process
 * and return the package reference `<registry>/<repo>:<tag>`.
 */
export function pushFixture(name: string, registry: string, plainHttp: boolean): Promise<string> {
  const key = `${registry} ${name}`;
  let p = pushed.get(key);
  if (!p) {
    p = pushFixtureNow(name, registry, plainHttp);
    pushed.set(key, p);
    // A failed push must not stick: the next check may try again.
    p.catch(() => pushed.delete(key));
  }
  return p;
}

async function pushFixtureNow(name: string, registry: string, plainHttp: boolean): Promise<string> {
  const f = listFixtures().valid.find((x) => x.name === name);
  if (!f) throw new FixturePushError(`no valid fixture named ${name}`);
  const dir = await mkdtemp(join(tmpdir(), `margo-conf-${name}-`));
  try {
    await cp(f.dir, dir, { recursive: true });
    const descFile = join(dir, "margo.yaml");
    const text = await readFile(descFile, "utf8");
    await writeFile(descFile, text.replace(FIXTURE_PREFIX, `oci://${registry}/margo-conformance/`));
    const checked = await validatePackageDir(dir, fixturePackageOptions({ ...f, dir }));
    const bad = checked.problems.filter((x) => x.severity === "error");
    if (bad.length)
      throw new FixturePushError(
        `fixture ${name} does not validate after rewriting its registry: ${bad.map((b) => `${b.rule} ${b.message}`).join("; ")}`,
      );
    const appId = checked.doc?.id ?? name;
    const client = new OciClient({ registry, plainHttp });
    const pub = await publishPackageDir(client, dir, {
      packageRepo: `margo-conformance/${appId}/package`,
    });
    return `${registry}/${pub.pkg.repository}:${pub.pkg.tag}`;
  } catch (e) {
    if (e instanceof FixturePushError) throw e;
    throw new FixturePushError(`pushing fixture ${name} to ${registry}: ${(e as Error).message}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Published apps for the current driver generation: `invalidate()` after a reset makes the next
 * `get` publish again (the references stay, the pushes are not repeated).
 */
export class AppCatalog {
  private current: Promise<PublishedApps> | undefined;

  constructor(
    private readonly driver: WfmDriver,
    private readonly registry: string,
    private readonly plainHttp: boolean,
  ) {}

  invalidate(): void {
    this.current = undefined;
  }

  get(): Promise<PublishedApps> {
    if (!this.current) {
      const p = this.publishAll();
      this.current = p;
      p.catch(() => {
        if (this.current === p) this.current = undefined;
      });
    }
    return this.current;
  }

  private async publishAll(): Promise<PublishedApps> {
    const [singleRef, multiRef] = await Promise.all([
      pushFixture(APPS.single, this.registry, this.plainHttp),
      pushFixture(APPS.multi, this.registry, this.plainHttp),
    ]);
    // One after the other: a WFM need not take concurrent publishes, and it is only two.
    const single = await this.driver.publish(singleRef, this.plainHttp);
    const multi = await this.driver.publish(multiRef, this.plainHttp);
    return {
      single: { ...single, ociReference: singleRef },
      multi: { ...multi, ociReference: multiRef },
    };
  }
}
