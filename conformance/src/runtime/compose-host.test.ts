import { describe, expect, it } from "vitest";
import { ComposeHostError, startComposeHost } from "./compose-host.js";

const base = {
  workDir: "/nonexistent",
  preloadImages: [],
  sourceDockerHost: "unix:///nowhere",
  log: () => {},
};

describe("startComposeHost arguments", () => {
  it.each([0, 251, 1.5, Number.NaN])(
    "refuses index %s before touching the system",
    async (index) => {
      // The /30 is 10.203.<index>.0: outside 1..250 it would not be an address of ours.
      await expect(startComposeHost({ ...base, index })).rejects.toThrow(ComposeHostError);
      await expect(startComposeHost({ ...base, index })).rejects.toThrow(
        /index must be an integer 1\.\.250/,
      );
    },
  );
});
