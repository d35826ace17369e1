import { describe, expect, it } from "vitest";
import { exitCodeFromStatus, isCompleted } from "./one-shot.js";

describe("isCompleted (item 73, drift)", () => {
  const exited0 = { Status: "exited", ExitCode: 0 };

  it("an exit 0 under restart no, none or on-failure is completed", () => {
    expect(isCompleted(exited0, "no")).toBe(true);
    expect(isCompleted(exited0, "")).toBe(true);
    expect(isCompleted(exited0, undefined)).toBe(true);
    expect(isCompleted(exited0, "on-failure")).toBe(true);
  });

  it("a service the engine must keep running is not completed when it is down", () => {
    expect(isCompleted(exited0, "always")).toBe(false);
    expect(isCompleted(exited0, "unless-stopped")).toBe(false);
  });

  it("a non-zero exit or a container not exited is never completed", () => {
    expect(isCompleted({ Status: "exited", ExitCode: 1 }, "no")).toBe(false);
    expect(isCompleted({ Status: "exited", ExitCode: 137 }, "on-failure")).toBe(false);
    expect(isCompleted({ Status: "running", ExitCode: 0 }, "no")).toBe(false);
    expect(isCompleted({ Status: "created", ExitCode: 0 }, "no")).toBe(false);
    expect(isCompleted({ Status: "dead", ExitCode: 0 }, "no")).toBe(false);
  });
});

describe("exitCodeFromStatus", () => {
  it("reads the code of an exited container's status line", () => {
    expect(exitCodeFromStatus("Exited (0) 3 seconds ago")).toBe(0);
    expect(exitCodeFromStatus("Exited (137) About a minute ago")).toBe(137);
  });

  it("is undefined for any other state", () => {
    expect(exitCodeFromStatus("Up 3 seconds (health: starting)")).toBeUndefined();
    expect(exitCodeFromStatus("Created")).toBeUndefined();
    expect(exitCodeFromStatus("Restarting (1) 2 seconds ago")).toBeUndefined();
  });
});
