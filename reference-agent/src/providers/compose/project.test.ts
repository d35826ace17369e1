import { describe, expect, it } from "vitest";
import { composeProjectName } from "./project.js";

const VALID = /^[a-z0-9][a-z0-9_-]*$/;

describe("composeProjectName", () => {
  it("is deterministic and a valid compose project name, verbatim when nothing needs changing", () => {
    const ref = { deploymentId: "5f0c2a10-1111-4222-8333-944455556666", componentName: "web_ui" };
    const a = composeProjectName(ref);
    expect(a).toBe("web_ui-5f0c2a10-1111-4222-8333-944455556666");
    expect(composeProjectName({ ...ref })).toBe(a);
    expect(a).toMatch(VALID);
  });

  it("appends a hash of the raw names whenever the slug differs from them", () => {
    const ref = { deploymentId: "5F0C2A10-1111-4222-8333-944455556666", componentName: "Web_UI" };
    const a = composeProjectName(ref);
    expect(a).toMatch(/^web_ui-5f0c2a10-1111-4222-8333-944455556666-[0-9a-f]{10}$/);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(composeProjectName({ ...ref })).toBe(a);
  });

  it("never gives two raw names that slug alike the same project", () => {
    const d = "5f0c2a10-1111-4222-8333-944455556666";
    const names = ["api-v1", "api.v1", "api/v1", "API-v1", "api v1", "-api-v1", "_api-v1"];
    const projects = names.map((componentName) =>
      composeProjectName({ deploymentId: d, componentName }),
    );
    expect(new Set(projects).size).toBe(names.length);
    for (const p of projects) expect(p).toMatch(VALID);
    // The one that needed no slugging keeps its readable name.
    expect(projects[0]).toBe(`api-v1-${d}`);
    // Differing only in the deployment id's case is still two projects.
    const upper = composeProjectName({ deploymentId: d.toUpperCase(), componentName: "api-v1" });
    expect(upper).not.toBe(projects[0]);
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
