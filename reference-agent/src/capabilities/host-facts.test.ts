import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { LogEvent } from "../log.js";
import { deviceArchitecture, type HostFactsSources, readHostFacts } from "./host-facts.js";

const root = mkdtempSync(join(tmpdir(), "margo-hostfacts-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fake /sys, /dev and /proc tree. */
function fakeTree(name: string, build: (s: HostFactsSources) => void): HostFactsSources {
  const base = join(root, name);
  const s: HostFactsSources = {
    sysClassNet: join(base, "sys/class/net"),
    sysClassDrm: join(base, "sys/class/drm"),
    dev: join(base, "dev"),
    procAsoundCards: join(base, "proc/asound/cards"),
    procAsoundPcm: join(base, "proc/asound/pcm"),
    procNetRoute: join(base, "proc/net/route"),
  };
  for (const d of [
    s.sysClassNet,
    s.sysClassDrm,
    s.dev,
    join(base, "proc/asound"),
    join(base, "proc/net"),
  ]) {
    mkdirSync(d, { recursive: true });
  }
  build(s);
  return s;
}

function nic(
  s: HostFactsSources,
  name: string,
  opts: { type: string; physical: boolean; wireless?: boolean },
) {
  const dir = join(s.sysClassNet, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "type"), `${opts.type}\n`);
  if (opts.physical) symlinkSync(root, join(dir, "device"));
  if (opts.wireless) mkdirSync(join(dir, "wireless"));
}

describe("host facts (items 25, 30)", () => {
  it("item 30: this machine: one cpu entry with amd64 and its cores, memory and storage in Mi, an interface, never throws", () => {
    const events: LogEvent[] = [];
    const facts = readHostFacts(root, (e) => events.push(e));
    expect(facts.cpus).toHaveLength(1);
    expect(facts.cpus[0]?.cores).toBeGreaterThanOrEqual(1);
    expect(facts.cpus[0]?.architecture).toBe(
      process.arch === "x64" ? "amd64" : deviceArchitecture(process.arch),
    );
    expect(facts.memory).toBe(`${Math.floor(totalmem() / 1048576)}Mi`);
    expect(facts.storage).toMatch(/^[1-9]\d*Mi$/);
    expect(facts.interfaces.length).toBeGreaterThanOrEqual(1);
    for (const i of facts.interfaces)
      expect(["ethernet", "wifi", "cellular", "bluetooth"]).toContain(i.type);
  });

  it("maps only the architectures the device enum has", () => {
    expect(deviceArchitecture("x64")).toBe("amd64");
    expect(deviceArchitecture("arm64")).toBe("arm64");
    expect(deviceArchitecture("arm")).toBe("arm");
    expect(deviceArchitecture("riscv64")).toBeUndefined();
    expect(deviceArchitecture("ia32")).toBeUndefined();
  });

  it("physical links only: veth/bridges/lo skipped, wifi by sysfs wireless, one entry per type", () => {
    const s = fakeTree("mixed", (t) => {
      nic(t, "lo", { type: "772", physical: false });
      nic(t, "eth0", { type: "1", physical: true });
      nic(t, "eth1", { type: "1", physical: true });
      nic(t, "wlan0", { type: "1", physical: true, wireless: true });
      nic(t, "docker0", { type: "1", physical: false });
      nic(t, "veth12ab", { type: "1", physical: false });
    });
    const facts = readHostFacts(root, () => {}, s);
    expect(facts.interfaces).toEqual([{ type: "ethernet" }, { type: "wifi" }]);
  });

  it("no physical link: the default-route interface is reported as ethernet", () => {
    const s = fakeTree("virtual", (t) => {
      nic(t, "lo", { type: "772", physical: false });
      nic(t, "eth0", { type: "1", physical: false });
      writeFileSync(
        t.procNetRoute,
        "Iface\tDestination\tGateway\tFlags\nbr0\t0011A8C0\t00000000\t0001\neth0\t00000000\t0111A8C0\t0003\n",
      );
    });
    expect(readHostFacts(root, () => {}, s).interfaces).toEqual([{ type: "ethernet" }]);
  });

  it("peripherals: DRM card -> gpu, connector -> display, /dev/video -> camera, ALSA playback/capture", () => {
    const s = fakeTree("periph", (t) => {
      mkdirSync(join(t.sysClassDrm, "card0"));
      mkdirSync(join(t.sysClassDrm, "card0-HDMI-A-1"));
      mkdirSync(join(t.sysClassDrm, "renderD128"));
      writeFileSync(join(t.dev, "video0"), "");
      writeFileSync(t.procAsoundCards, " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n");
      writeFileSync(t.procAsoundPcm, "00-00: ALC3246 Analog : ALC3246 Analog : playback 1\n");
    });
    expect(readHostFacts(root, () => {}, s).peripherals).toEqual([
      { type: "gpu" },
      { type: "display" },
      { type: "camera" },
      { type: "speaker" },
    ]);
    const none = fakeTree("nosound", (t) =>
      writeFileSync(t.procAsoundCards, "--- no soundcards ---\n"),
    );
    expect(readHostFacts(root, () => {}, none).peripherals).toEqual([]);
  });

  it("never throws: missing sources and a missing state dir only leave facts out", () => {
    const missing = join(root, "does-not-exist");
    const s: HostFactsSources = {
      sysClassNet: missing,
      sysClassDrm: missing,
      dev: missing,
      procAsoundCards: missing,
      procAsoundPcm: missing,
      procNetRoute: missing,
    };
    const facts = readHostFacts(missing, () => {}, s);
    expect(facts.storage).toBeUndefined();
    expect(facts.peripherals).toEqual([]);
    expect(facts.cpus).toHaveLength(1);
  });
});
