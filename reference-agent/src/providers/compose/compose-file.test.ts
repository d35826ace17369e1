import { describe, expect, it } from "vitest";
import { composeServices } from "./compose-file.js";

describe("composeServices", () => {
  it("lists the service keys, sorted, with merge keys and quoted or numeric names", () => {
    const text = [
      "x-base: &base",
      "  image: busybox",
      "services:",
      "  web:",
      "    <<: *base",
      '  "1":',
      "    image: busybox",
      "  api: {image: busybox}",
      "",
    ].join("\n");
    expect(composeServices(text)).toEqual(["1", "api", "web"]);
  });

  it("skips services gated by profiles unless COMPOSE_PROFILES activates one of them", () => {
    const text = [
      "services:",
      "  app: {image: busybox}",
      "  dbg: {image: busybox, profiles: [debug]}",
      "  tools: {image: busybox, profiles: [tools, ops]}",
      "  open: {image: busybox, profiles: []}",
      "",
    ].join("\n");
    expect(composeServices(text)).toEqual(["app", "open"]);
    expect(composeServices(text, { COMPOSE_PROFILES: " ops ,x" })).toEqual([
      "app",
      "open",
      "tools",
    ]);
    expect(composeServices(text, { COMPOSE_PROFILES: "*" })).toEqual([
      "app",
      "dbg",
      "open",
      "tools",
    ]);
  });

  it("leaves to compose what the file alone cannot tell", () => {
    expect(composeServices("include: [other.yaml]\nservices: {}\n")).toHaveProperty("unknown");
    expect(composeServices("services:\n  a: {image: busybox, profiles: ['$P']}\n")).toHaveProperty(
      "unknown",
    );
    expect(composeServices("services:\n  a: 1\n  a: 2\n")).toHaveProperty("unknown");
    expect(composeServices("services: [a]\n")).toHaveProperty("unknown");
    expect(composeServices(": : :\n  - [")).toHaveProperty("unknown");
  });
});
