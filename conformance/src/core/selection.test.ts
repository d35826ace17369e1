import { describe, expect, it } from "vitest";
import { fakeCheck } from "./fake-suite.js";
import { missingFeatures, selectChecks } from "./selection.js";

const checks = [
  fakeCheck("wfm", "etag", "pass", { family: "manifest" }),
  fakeCheck("wfm", "vary", "pass", { family: "artifacts", level: "SHOULD" }),
  fakeCheck("wfm", "tls", "pass", { family: "transport" }),
  fakeCheck("wfm", "helm", "pass", { family: "deployment", features: ["helm"] }),
  fakeCheck("wfm", "may", "pass", { family: "status", level: "MAY" }),
];
const ids = (cs: { id: string }[]) => cs.map((c) => c.id);
const none = { include: [], exclude: [], features: [], parts: [] as Array<"core" | "extended"> };

describe("selectChecks", () => {
  it("selects everything by default, keeping declaration order", () => {
    expect(ids(selectChecks(checks, none))).toEqual(ids(checks));
  });
  it("include and exclude by id prefix; exclude wins", () => {
    expect(
      ids(selectChecks(checks, { ...none, include: ["wfm.manifest", "wfm.transport."] })),
    ).toEqual(["wfm.manifest.etag", "wfm.transport.tls"]);
    expect(
      ids(
        selectChecks(checks, {
          ...none,
          include: ["wfm."],
          exclude: ["wfm.transport", "wfm.deployment.helm"],
        }),
      ),
    ).toEqual(["wfm.manifest.etag", "wfm.artifacts.vary", "wfm.status.may"]);
  });
  it("parts: core = MUST, extended = SHOULD and MAY", () => {
    expect(ids(selectChecks(checks, { ...none, parts: ["core"] }))).toEqual([
      "wfm.manifest.etag",
      "wfm.transport.tls",
      "wfm.deployment.helm",
    ]);
    expect(ids(selectChecks(checks, { ...none, parts: ["extended"] }))).toEqual([
      "wfm.artifacts.vary",
      "wfm.status.may",
    ]);
  });
  it("features keep only checks needing one of them", () => {
    expect(ids(selectChecks(checks, { ...none, features: ["helm"] }))).toEqual([
      "wfm.deployment.helm",
    ]);
    expect(ids(selectChecks(checks, { ...none, features: ["other"] }))).toEqual([]);
  });
  it("missingFeatures names what the implementation does not claim", () => {
    const c = fakeCheck("wfm", "x", "pass", { features: ["helm", "compose"] });
    expect(missingFeatures(c, ["compose"])).toEqual(["helm"]);
    expect(missingFeatures(c, ["compose", "helm"])).toEqual([]);
    expect(missingFeatures(fakeCheck("wfm", "y", "pass"), [])).toEqual([]);
  });
});
