import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Issuer, importPrivateKeyPem, pemToDer } from "@margo/proto/identity";

/**
 * The issuing CA of a test WFM's trust domain, read from `<dataDir>/identity/state.json` (the
 * file-backed authority's layout: issuing authority first). Tests use it to mint deliberately
 * broken client certificates that chain to the real trust bundle, so the SPIFFE checks, not the
 * chain check, are what refuses them.
 */
export async function wfmIssuer(dataDir: string): Promise<Issuer> {
  const dir = join(dataDir, "identity");
  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as {
    authorities: Array<{ cert: string; key: string }>;
  };
  const a = state.authorities[0];
  if (!a) throw new Error(`${dir}/state.json lists no authority`);
  const certDer = pemToDer(await readFile(join(dir, a.cert), "utf8"))[0];
  if (!certDer) throw new Error(`${a.cert} holds no certificate`);
  return {
    certDer,
    privateKey: await importPrivateKeyPem(await readFile(join(dir, a.key), "utf8")),
  };
}
