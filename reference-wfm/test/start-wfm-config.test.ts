import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_KEEP_ALIVE_SECONDS } from "../src/config.js";
import { liveTrustUrl } from "../src/wfm.js";
import { jsonOf } from "./support/mtls-client.js";
import { startTestWfm, type TestWfm } from "./support/start-wfm.js";

/**
 * What `startWfm` takes from wfm.json on its own, without the CLI's help: the Management
 * Interface keep-alive (a library caller used to get Node's 5 s, shorter than a 15 s poll) and a
 * discovery document naming the live trust port when the configured one is 0.
 */

let wfm: TestWfm | undefined;
afterEach(async () => {
  await wfm?.dispose();
  wfm = undefined;
});

/** The idle timeout the server announces in `Keep-Alive: timeout=N` on a persistent connection. */
async function announcedKeepAlive(w: TestWfm): Promise<string | undefined> {
  const creds = await w.admit("keepalive-1");
  const res = await w.client(creds, { keepAlive: true }).get("/api/v1/deployments");
  expect(res.status).toBe(200);
  return res.headers["keep-alive"] as string | undefined;
}

describe("startWfm keep-alive from wfm.json", () => {
  it("the 65 s default reaches the Management Interface without any option", async () => {
    wfm = await startTestWfm();
    expect(wfm.config.managementKeepAliveSeconds).toBe(DEFAULT_KEEP_ALIVE_SECONDS);
    expect(await announcedKeepAlive(wfm)).toBe(`timeout=${DEFAULT_KEEP_ALIVE_SECONDS}`);
  });

  it("managementKeepAliveSeconds in the config is used, and managementKeepAliveMs still overrides it", async () => {
    wfm = await startTestWfm({ config: { managementKeepAliveSeconds: 20 } });
    expect(await announcedKeepAlive(wfm)).toBe("timeout=20");
    await wfm.dispose();
    wfm = await startTestWfm({
      config: { managementKeepAliveSeconds: 20 },
      managementKeepAliveMs: 7_000,
    });
    expect(await announcedKeepAlive(wfm)).toBe("timeout=7");
  });
});

describe("discovery with trust port 0", () => {
  it("item 17: trustBundleUri names the live trust port, and the bundle is served there", async () => {
    wfm = await startTestWfm({ config: { trustPublicUrl: "https://localhost:0" } });
    expect(wfm.trustPort).toBeGreaterThan(0);
    const mis = wfm.client(undefined, { port: wfm.trustPort });
    const res = await mis.get("/.well-known/margo");
    expect(res.status).toBe(200);
    const uri = String(jsonOf(res).trustBundleUri);
    expect(uri).toBe(`https://localhost:${wfm.trustPort}/.well-known/spiffe/bundle.json`);
    const bundle = await mis.get(new URL(uri).pathname);
    expect(bundle.status).toBe(200);
    expect(res.headers.etag).toMatch(/^"sha256:[0-9a-f]{64}"$/);
  });

  it("a configured port other than 0, a default port and a path prefix are left alone", () => {
    expect(liveTrustUrl("https://mis.example.org:8443", 40000)).toBe(
      "https://mis.example.org:8443",
    );
    expect(liveTrustUrl("https://mis.example.org", 40000)).toBe("https://mis.example.org");
    expect(liveTrustUrl("https://h:0/mis/", 40000)).toBe("https://h:40000/mis/");
    expect(liveTrustUrl("https://h:0/mis", 40000)).toBe("https://h:40000/mis");
  });
});
