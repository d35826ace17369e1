import { describe, expect, it } from "vitest";
import { composeProjectName } from "./project.js";

const VALID = /^[a-z0-9][a-z0-9_-]*$/;

describe("composeProjectName", () => {
  it("is deterministic and a valid compose project name", () => {
    const ref = { deploymentId: "5F0C2A10-1111-4222-8333-944455556666", componentName: "Web_UI" };
    const a = composeProjectName(ref);
    expect(a).toBe("web_ui-5f0c2a10-1111-4222-8333-944455556666");
    expect(composeProjectName({ ...ref })).toBe(a);
    expect(a).toMatch(VALID);
  });

  it("keeps the full deployment id, so ids sharing a prefix never share a project", () => {
    const a = composeProjectName({ deploymentId: "abcdefgh-1", componentName: "web" });
    const b = composeProjectName({ deploymentId: "abcdefgh-2", componentName: "web" });
    expect(a).not.toBe(b);
  });

  it("replaces characters compose refuses and never starts with a separator", () => {
    const n = composeProjectName({ deploymentId: "x.y/z", componentName: "-Über App" });
    expect(n).toMatch(VALID);
    expect(n).toContain("x-y-z");
  });

  it("cuts over-long names but keeps them distinct through a hash", () => {
    const long = "c".repeat(80);
    const a = composeProjectName({ deploymentId: "d1", componentName: long });
    const b = composeProjectName({ deploymentId: "d2", componentName: long });
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(VALID);
    expect(a).not.toBe(b);
  });
});
