import { existsSync, readdirSync, readFileSync, statfsSync } from "node:fs";
import { availableParallelism, networkInterfaces, totalmem } from "node:os";
import { join } from "node:path";
import type { AgentLog } from "../log.js";

/**
 * What this machine really offers (items 25, 30), read fresh each time so a changed host (memory
 * resized, a camera plugged in) is re-reported. Values are already in the wire vocabulary of the
 * capabilities document; anything that cannot be determined truthfully is left out rather than
 * guessed, because a WFM places workloads by these facts.
 */
export interface HostFacts {
  cpus: Array<{ cores: number; architecture?: "amd64" | "arm64" | "arm" }>;
  /** Total memory, binary units ("<n>Mi"), the unit the application requirements use. */
  memory?: string;
  /** Size of the file system holding the state directory ("<n>Mi"). */
  storage?: string;
  interfaces: Array<{ type: "ethernet" | "wifi" | "cellular" | "bluetooth" }>;
  peripherals: Array<{ type: "gpu" | "display" | "camera" | "microphone" | "speaker" }>;
}

/** Where the readers look; tests point them at a fake tree. */
export interface HostFactsSources {
  sysClassNet: string;
  sysClassDrm: string;
  dev: string;
  procAsoundCards: string;
  procAsoundPcm: string;
  procNetRoute: string;
}

export const LINUX_SOURCES: HostFactsSources = {
  sysClassNet: "/sys/class/net",
  sysClassDrm: "/sys/class/drm",
  dev: "/dev",
  procAsoundCards: "/proc/asound/cards",
  procAsoundPcm: "/proc/asound/pcm",
  procNetRoute: "/proc/net/route",
};

const MI = 1024 * 1024;

/** The device enum knows amd64, arm64 and arm only (OpenAPI cpus[].architecture). */
export function deviceArchitecture(arch: string): "amd64" | "arm64" | "arm" | undefined {
  switch (arch) {
    case "x64":
      return "amd64";
    case "arm64":
      return "arm64";
    case "arm":
      return "arm";
    default:
      return undefined;
  }
}

let warnedArch = false;

/**
 * Read the host facts. Never throws: each fact is best-effort and a failure only omits it (a
 * missing /sys on another OS must not keep the agent from reporting what it does know).
 */
export function readHostFacts(
  stateDir: string,
  log: AgentLog,
  sources: HostFactsSources = LINUX_SOURCES,
): HostFacts {
  const arch = deviceArchitecture(process.arch);
  if (arch === undefined && !warnedArch) {
    warnedArch = true;
    // A wrong enum value would mislead placement; an absent one only makes the WFM less sure.
    log({
      level: "warn",
      msg: `CPU architecture ${process.arch} has no rc.3 device value; reporting cores without architecture`,
      kind: "capabilities-architecture-unknown",
    });
  }
  const facts: HostFacts = {
    cpus: [
      { cores: best(() => availableParallelism(), 1), ...(arch ? { architecture: arch } : {}) },
    ],
    interfaces: best(() => readInterfaces(sources), []),
    peripherals: best(() => readPeripherals(sources), []),
  };
  const mem = best(() => totalmem(), 0);
  if (mem > 0) facts.memory = `${Math.floor(mem / MI)}Mi`;
  const storage = best(() => {
    const s = statfsSync(stateDir);
    return Number(s.blocks) * Number(s.bsize);
  }, 0);
  if (storage > 0) facts.storage = `${Math.floor(storage / MI)}Mi`;
  return facts;
}

function best<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Physical network interfaces: those with a `device` link in sysfs (veth pairs, docker bridges,
 * tunnels and loopback have none). wifi when sysfs has `wireless` or `phy80211`, bluetooth/
 * cellular by ARPHRD type, else ethernet for ARPHRD_ETHER (1). One entry per type: the document
 * says what kinds of links exist, not how many.
 */
function readInterfaces(src: HostFactsSources): HostFacts["interfaces"] {
  const names = best(() => readdirSync(src.sysClassNet), [] as string[]);
  const found = new Set<HostFacts["interfaces"][number]["type"]>();
  for (const name of names) {
    if (name === "lo") continue;
    const dir = join(src.sysClassNet, name);
    if (!existsSync(join(dir, "device"))) continue;
    if (existsSync(join(dir, "wireless")) || existsSync(join(dir, "phy80211"))) {
      found.add("wifi");
      continue;
    }
    const type = readText(join(dir, "type"))?.trim();
    // ARPHRD_ETHER 1; ARPHRD_NONE 65534 is what most WWAN (cellular) modems expose.
    if (type === "1") found.add("ethernet");
    else if (type === "65534" && /^(wwan|rmnet|usb)/.test(name)) found.add("cellular");
  }
  if (found.size === 0) {
    // Containers and VMs expose only virtual links (no `device` in sysfs), yet the host does talk
    // over them: the default-route interface is then the best evidence of a wired link, and
    // reporting none would tell the WFM this device cannot communicate at all.
    const def = defaultRouteInterface(src);
    if (def !== undefined) found.add(def.startsWith("wl") ? "wifi" : "ethernet");
  }
  return [...found].sort().map((type) => ({ type }));
}

/** Interface of the IPv4 default route (destination 00000000), or the first non-loopback one. */
function defaultRouteInterface(src: HostFactsSources): string | undefined {
  const route = readText(src.procNetRoute);
  for (const line of route?.split("\n").slice(1) ?? []) {
    const [iface, destination] = line.trim().split(/\s+/);
    if (iface && destination === "00000000") return iface;
  }
  const nics = best(() => networkInterfaces(), {});
  return Object.entries(nics).find(([, addrs]) => addrs?.some((a) => !a.internal))?.[0];
}

/** GPUs from DRM cards, cameras from V4L2 nodes, speaker/microphone from ALSA cards. */
function readPeripherals(src: HostFactsSources): HostFacts["peripherals"] {
  const out: HostFacts["peripherals"] = [];
  const drm = best(() => readdirSync(src.sysClassDrm), [] as string[]);
  // card0, card1 (not card0-HDMI-A-1, which are connectors of a card).
  if (drm.some((n) => /^card\d+$/.test(n))) out.push({ type: "gpu" });
  if (drm.some((n) => /^card\d+-/.test(n))) out.push({ type: "display" });
  const dev = best(() => readdirSync(src.dev), [] as string[]);
  if (dev.some((n) => /^video\d+$/.test(n))) out.push({ type: "camera" });
  const cards = readText(src.procAsoundCards);
  // "--- no soundcards ---" when ALSA is loaded without hardware.
  if (cards !== undefined && /^\s*\d+\s+\[/m.test(cards)) {
    // The PCM list tells playback (speaker) from capture (microphone); without it, a card is
    // taken to do both, as nearly every codec does.
    const pcm = readText(src.procAsoundPcm);
    const playback = pcm === undefined || /: playback \d+/.test(pcm);
    const capture = pcm === undefined || /: capture \d+/.test(pcm);
    if (playback) out.push({ type: "speaker" });
    if (capture) out.push({ type: "microphone" });
  }
  return out;
}
