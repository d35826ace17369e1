import { describe, expect, it } from "vitest";
import { checkDeviceIdPolicy, MAX_DEVICE_ID_LENGTH } from "./device-id.js";

describe("checkDeviceIdPolicy", () => {
  it("accepts plain ids, child paths and, only when asked, a gw/* target", () => {
    for (const ok of ["dev1", "gw/cam", "gw/p1/cam", "a.b_c~d-e", "x".repeat(MAX_DEVICE_ID_LENGTH)])
      expect(checkDeviceIdPolicy(ok)).toBeUndefined();
    expect(checkDeviceIdPolicy("gw/*")).toMatch(/DeviceId/);
    expect(checkDeviceIdPolicy("gw/*", { wildcard: true })).toBeUndefined();
    expect(checkDeviceIdPolicy("gw/p1/*", { wildcard: true })).toBeUndefined();
  });

  it("item 60: refuses what the OpenAPI pattern refuses, with or without the wildcard", () => {
    for (const bad of ["", "/x", "x/", "a//b", "a b", "é", "gw/*/x", "*"]) {
      expect(checkDeviceIdPolicy(bad), bad).toBeTypeOf("string");
      expect(checkDeviceIdPolicy(bad, { wildcard: true }), bad).toBeTypeOf("string");
    }
  });

  it("refuses . and .. segments, which the pattern alone lets through", () => {
    for (const bad of [".", "..", "../x", "x/..", "gw/./cam", "gw/../*"])
      expect(checkDeviceIdPolicy(bad, { wildcard: true }), bad).toMatch(/"\." or "\.\." segment/);
    // Dots inside a segment are ordinary unreserved characters.
    expect(checkDeviceIdPolicy("...")).toBeUndefined();
    expect(checkDeviceIdPolicy("gw/.cam")).toBeUndefined();
  });

  it("refuses more than 253 characters", () => {
    expect(checkDeviceIdPolicy("x".repeat(MAX_DEVICE_ID_LENGTH + 1))).toMatch(/at most 253/);
    expect(checkDeviceIdPolicy("x".repeat(3000), { wildcard: true })).toMatch(/at most 253/);
  });
});
