import { describe, expect, it } from "vitest";
import { namespaceProblem } from "./errors.js";
import { PROBLEM_NS } from "./support.js";

describe("namespaceProblem (wfm-101)", () => {
  it("accepts registered Margo types, about:blank, vendor types and bodies without a type", () => {
    for (const t of [
      `${PROBLEM_NS}#invalid-request`,
      `${PROBLEM_NS}#server-cannot-generate-response`,
      "about:blank",
      "https://vendor.example/problems#quota",
      undefined,
    ])
      expect(namespaceProblem(t)).toBeUndefined();
  });
  it("refuses an unregistered or misspelt type in the Margo namespace", () => {
    for (const t of [
      `${PROBLEM_NS}#not-found`,
      `${PROBLEM_NS}#spiffe-bundle-not-found`,
      `${PROBLEM_NS}/invalid-request`,
      `${PROBLEM_NS}#Invalid-Request`,
      PROBLEM_NS,
    ])
      expect(namespaceProblem(t)).toMatch(/not a registered Margo type/);
  });
});
