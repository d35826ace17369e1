import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CONFIG_FILE, defaultConfig, loadConfig, saveConfig } from "./config.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "margo-wfm-config-"));
  dirs.push(d);
  return d;
}

describe("loadConfig", () => {
  it("fills keys an older wfm.json lacks from the defaults, keeping what it says", async () => {
    const dir = await tempDir();
    const full = defaultConfig(dir, { trustDomain: "t.org", wfmId: "w1" });
    const { managementLimits: _dropped, ...older } = full;
    await writeFile(
      join(dir, CONFIG_FILE),
      JSON.stringify({ ...older, maxBodyBytes: 4096, rateLimit: { requestsPerSecond: 7 } }),
    );
    const loaded = await loadConfig(dir);
    expect(loaded.managementLimits).toEqual(full.managementLimits);
    expect(loaded.maxBodyBytes).toBe(4096);
    // Nested objects are merged one level deep: the missing burst comes from the defaults.
    expect(loaded.rateLimit).toEqual({ requestsPerSecond: 7, burst: full.rateLimit.burst });
    expect(loaded.trustDomain).toBe("t.org");
  });

  it("round-trips a saved config, partial limits merged over the defaults", async () => {
    const dir = await tempDir();
    const config = defaultConfig(dir, { trustDomain: "t.org", wfmId: "w1" });
    await saveConfig(config);
    expect(await loadConfig(dir)).toEqual(config);
    await writeFile(
      join(dir, CONFIG_FILE),
      JSON.stringify({ ...config, managementLimits: { maxConnections: 5 } }),
    );
    const loaded = await loadConfig(dir);
    expect(loaded.managementLimits).toEqual({ ...config.managementLimits, maxConnections: 5 });
  });

  it("an older wfm.json's requestTimeoutMs still loads, as the body grace (never stricter than before); an explicit bodyGraceMs wins", async () => {
    const dir = await tempDir();
    const config = defaultConfig(dir, { trustDomain: "t.org", wfmId: "w1" });
    const { bodyGraceMs: _g, minBodyBytesPerSecond: _r, ...oldLimits } = config.managementLimits;
    const old = { ...config, managementLimits: { ...oldLimits, requestTimeoutMs: 120_000 } };
    await writeFile(join(dir, CONFIG_FILE), JSON.stringify(old));
    const loaded = (await loadConfig(dir)).managementLimits;
    expect(loaded.bodyGraceMs).toBe(120_000);
    expect(loaded.minBodyBytesPerSecond).toBe(config.managementLimits.minBodyBytesPerSecond);
    await writeFile(
      join(dir, CONFIG_FILE),
      JSON.stringify({
        ...old,
        managementLimits: { ...old.managementLimits, bodyGraceMs: 5000 },
      }),
    );
    expect((await loadConfig(dir)).managementLimits.bodyGraceMs).toBe(5000);
  });

  it("an older wfm.json without managementKeepAliveSeconds gets 65 s, above a 15 s poll", async () => {
    const dir = await tempDir();
    const { managementKeepAliveSeconds: _dropped, ...older } = defaultConfig(dir, {
      trustDomain: "t.org",
      wfmId: "w1",
    });
    await writeFile(join(dir, CONFIG_FILE), JSON.stringify(older));
    expect((await loadConfig(dir)).managementKeepAliveSeconds).toBe(65);
  });

  it("the default connection cap covers 10,000 devices with margin", () => {
    const d = defaultConfig("/x", { trustDomain: "t.org", wfmId: "w" }).managementLimits;
    expect(d.maxConnections).toBeGreaterThanOrEqual(10_000);
    expect(d.handshakeTimeoutMs).toBeLessThanOrEqual(10_000);
    expect(d.requestTimeoutMs).toBeUndefined();
  });
});
