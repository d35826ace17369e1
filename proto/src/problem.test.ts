import { describe, expect, it } from "vitest";
import { hasErrors, pointer, problem, ValidationError, warning } from "./problem.js";

describe("problem", () => {
  it("escapes JSON pointer segments per RFC 6901", () => {
    expect(pointer("a/b", "c~d", 0)).toBe("/a~1b/c~0d/0");
    expect(pointer()).toBe("");
  });
  it("counts only errors as rejecting", () => {
    expect(hasErrors([warning("r", "", "m")])).toBe(false);
    expect(hasErrors([warning("r", "", "m"), problem("s", "/x", "m")])).toBe(true);
  });
  it("names every error in the ValidationError message", () => {
    const e = new ValidationError("margo.yaml", [problem("description.id-pattern", "/id", "bad")]);
    expect(e.message).toContain("description.id-pattern at /id");
    expect(e.problems).toHaveLength(1);
  });
});
