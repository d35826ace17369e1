import { describe, expect, it } from "vitest";
import { inWindow, isDowntime, nextAllowedAt, pollingAllowed } from "./schedule.js";

const at = (hhmm: string, day = "2026-03-10") => Date.parse(`${day}T${hhmm}:00Z`);

describe("schedule (item 87)", () => {
  it("inWindow: plain window is [start, end)", () => {
    const w = { start: "09:00", end: "17:00" };
    expect(inWindow(at("08:59"), w)).toBe(false);
    expect(inWindow(at("09:00"), w)).toBe(true);
    expect(inWindow(at("16:59"), w)).toBe(true);
    expect(inWindow(at("17:00"), w)).toBe(false);
  });

  it("inWindow: a window wrapping midnight holds on both sides of it", () => {
    const w = { start: "22:00", end: "02:00" };
    expect(inWindow(at("21:59"), w)).toBe(false);
    expect(inWindow(at("22:00"), w)).toBe(true);
    expect(inWindow(at("23:59"), w)).toBe(true);
    expect(inWindow(at("00:00"), w)).toBe(true);
    expect(inWindow(at("01:59"), w)).toBe(true);
    expect(inWindow(at("02:00"), w)).toBe(false);
  });

  it("inWindow: start equal to end is empty, not the whole day", () => {
    expect(inWindow(at("05:00"), { start: "05:00", end: "05:00" })).toBe(false);
  });

  it("isDowntime and pollingAllowed combine downtime and polling hours", () => {
    const config = {
      downtime: [{ start: "23:00", end: "01:00" }],
      polling: { periodMs: 1000, jitterRatio: 0, hours: { start: "20:00", end: "06:00" } },
    };
    expect(isDowntime(at("00:30"), config.downtime)).toBe(true);
    expect(pollingAllowed(at("00:30"), config)).toBe(false);
    expect(pollingAllowed(at("21:00"), config)).toBe(true);
    expect(pollingAllowed(at("03:00"), config)).toBe(true);
    expect(pollingAllowed(at("12:00"), config)).toBe(false);
  });

  it("nextAllowedAt: now when allowed, else the end of downtime or the start of polling hours", () => {
    const config = {
      downtime: [{ start: "23:00", end: "01:00" }],
      polling: { periodMs: 1000, jitterRatio: 0, hours: { start: "20:00", end: "06:00" } },
    };
    expect(nextAllowedAt(at("21:00"), config)).toBe(at("21:00"));
    expect(nextAllowedAt(at("23:30"), config)).toBe(at("01:00", "2026-03-11"));
    expect(nextAllowedAt(at("00:30"), config)).toBe(at("01:00"));
    expect(nextAllowedAt(at("12:00"), config)).toBe(at("20:00"));
    expect(nextAllowedAt(at("06:00"), config)).toBe(at("20:00"));
  });

  it("nextAllowedAt: chained downtime windows end at the last one", () => {
    const config = {
      downtime: [
        { start: "10:00", end: "11:00" },
        { start: "11:00", end: "12:30" },
      ],
      polling: { periodMs: 1000, jitterRatio: 0 },
    };
    expect(nextAllowedAt(at("10:15"), config)).toBe(at("12:30"));
  });
});
