import type { AgentConfig, DailyWindow } from "../config.js";

/**
 * When the agent may talk to the WFM (item 87): never inside a downtime window (no requests, no
 * retries), and only inside the polling hours when those are configured. Pure functions of a
 * clock value so the sync loop and its tests agree on every edge; all times are UTC.
 */

const DAY_MS = 24 * 3600 * 1000;

/** Minutes since midnight of an "HH:MM" string (normaliseConfig has checked the format). */
function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(":");
  return Number(h) * 60 + Number(m);
}

function startOfUtcDay(now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS;
}

/**
 * True when `now` (epoch ms) falls in the window [start, end). `end` before `start` wraps past
 * midnight (22:00-02:00); `start` equal to `end` is an empty window, not a whole day, so a typo
 * cannot silence an agent for good.
 */
export function inWindow(now: number, w: DailyWindow): boolean {
  const start = minutesOf(w.start) * 60_000;
  const end = minutesOf(w.end) * 60_000;
  const t = now - startOfUtcDay(now);
  if (start === end) return false;
  if (start < end) return t >= start && t < end;
  return t >= start || t < end;
}

/** True when any downtime window holds `now`. */
export function isDowntime(now: number, windows: readonly DailyWindow[]): boolean {
  return windows.some((w) => inWindow(now, w));
}

/** May a request go out at `now`: outside every downtime and inside the polling hours, if set. */
export function pollingAllowed(now: number, config: Pick<AgentConfig, "downtime" | "polling">) {
  if (isDowntime(now, config.downtime)) return false;
  return config.polling.hours === undefined || inWindow(now, config.polling.hours);
}

/** Epoch ms of the next moment `w` ends (its end boundary after `now`). */
function nextEnd(now: number, w: DailyWindow): number {
  const day = startOfUtcDay(now);
  const end = day + minutesOf(w.end) * 60_000;
  return end > now ? end : end + DAY_MS;
}

/** Epoch ms of the next moment `w` starts (at or after `now`). */
function nextStart(now: number, w: DailyWindow): number {
  const day = startOfUtcDay(now);
  const start = day + minutesOf(w.start) * 60_000;
  return start >= now ? start : start + DAY_MS;
}

/**
 * Epoch ms when the next request may go out: `now` if allowed, else the earliest later boundary
 * (a downtime end, the polling hours start) at which `pollingAllowed` holds. Windows may overlap
 * or chain, so candidates are tried in order rather than trusting the first boundary.
 */
export function nextAllowedAt(now: number, config: Pick<AgentConfig, "downtime" | "polling">) {
  if (pollingAllowed(now, config)) return now;
  const candidates = new Set<number>();
  // Two days of boundaries cover every combination of daily windows.
  for (const offset of [0, DAY_MS]) {
    for (const w of config.downtime) candidates.add(nextEnd(now + offset, w));
    if (config.polling.hours) candidates.add(nextStart(now + offset, config.polling.hours));
  }
  for (const t of [...candidates].sort((a, b) => a - b)) {
    if (t > now && pollingAllowed(t, config)) return t;
  }
  // Every minute of the day is excluded (e.g. a 00:00-23:59 downtime plus 23:59-00:00): look
  // again tomorrow rather than spin.
  return now + DAY_MS;
}
