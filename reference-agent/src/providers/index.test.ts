import { describe, expect, it } from "vitest";
import { defaultConfig } from "../config.js";
import { silentLog } from "../log.js";
import { createProviders } from "./index.js";

const base = defaultConfig("/tmp/margo-t-state", {
  deviceId: "d1",
  wfmUrl: "https://127.0.0.1:1",
  identityDir: "/tmp/margo-t-id",
});

describe("createProviders", () => {
  it("builds only the enabled providers, Compose first", () => {
    expect(createProviders(base, silentLog).map((p) => p.type)).toEqual(["compose"]);
    const both = { ...base, helm: { ...base.helm, enabled: true } };
    expect(createProviders(both, silentLog).map((p) => p.type)).toEqual(["compose", "helm"]);
    const none = { ...base, compose: { ...base.compose, enabled: false } };
    expect(createProviders(none, silentLog)).toEqual([]);
  });
});
