import { describe, expect, it } from "vitest";
import { route } from "./routes.js";

const D = `sha256:${"0".repeat(63)}f`;

describe("Management Interface routing", () => {
  it("item 26: capabilities PUT/DELETE take the rest of the path as deviceId", () => {
    expect(route("PUT", "/api/v1/capabilities/gw-1")).toEqual({
      op: "putCapabilities",
      deviceId: "gw-1",
    });
    expect(route("DELETE", "/api/v1/capabilities/gw-1/child~2")).toEqual({
      op: "deleteCapabilities",
      deviceId: "gw-1/child~2",
    });
    expect(route("PUT", "/api/v1/capabilities/gw%2D1/c")).toEqual({
      op: "putCapabilities",
      deviceId: "gw-1/c",
    });
  });

  it("refuses empty segments and an encoded slash in a deviceId", () => {
    for (const p of [
      "/api/v1/capabilities",
      "/api/v1/capabilities/",
      "/api/v1/capabilities/a//b",
      "/api/v1/capabilities/a/",
      "/api/v1/capabilities/a%2Fb",
      "/api/v1/capabilities/%E0%A4%A",
    ]) {
      expect(route("PUT", p), p).toEqual({ miss: "not-found" });
    }
  });

  it("the six operations and the query string is ignored", () => {
    expect(route("GET", "/api/v1/deployments?x=1")).toEqual({ op: "getManifest" });
    expect(route("GET", `/api/v1/deployments/d-1/${D}`)).toEqual({
      op: "getDeploymentYaml",
      deploymentId: "d-1",
      digest: D,
    });
    expect(route("GET", `/api/v1/bundles/${D}`)).toEqual({ op: "getBundle", digest: D });
    expect(route("POST", "/api/v1/deployments/d-1/status")).toEqual({
      op: "reportStatus",
      deploymentId: "d-1",
    });
  });

  it("item 48: a digest segment that is no lowercase sha256 is a 404 of the operation's type", () => {
    for (const bad of ["sha256:ABC", `sha512:${"0".repeat(64)}`, D.toUpperCase(), `${D}0`]) {
      expect(route("GET", `/api/v1/bundles/${bad}`)).toEqual({
        miss: "bad-digest",
        kind: "invalid-bundle",
      });
      expect(route("GET", `/api/v1/deployments/d/${bad}`)).toEqual({
        miss: "bad-digest",
        kind: "deployment-not-found",
      });
    }
    expect(route("GET", "/api/v1/deployments/d/status")).toEqual({
      miss: "bad-digest",
      kind: "deployment-not-found",
    });
  });

  it("item 15: wrong methods on known paths are 405 with Allow; other paths 404", () => {
    expect(route("POST", "/api/v1/deployments")).toEqual({
      miss: "method-not-allowed",
      allow: ["GET"],
    });
    expect(route("GET", "/api/v1/capabilities/x")).toEqual({
      miss: "method-not-allowed",
      allow: ["PUT", "DELETE"],
    });
    expect(route("PUT", "/api/v1/deployments/d/status")).toEqual({
      miss: "method-not-allowed",
      allow: ["GET", "POST"],
    });
    expect(route("POST", `/api/v1/deployments/d/${D}`)).toEqual({
      miss: "method-not-allowed",
      allow: ["GET"],
    });
    expect(route("DELETE", `/api/v1/bundles/${D}`)).toEqual({
      miss: "method-not-allowed",
      allow: ["GET"],
    });
    for (const p of [
      "/api/v1/onboarding",
      "/api/v1/onboarding/certificate",
      "/api/v1/clients/c/deployments",
      "/api/v1/deployments/",
      "/api/v1/deployments/a/b/c",
      "/api/v2/deployments",
      "/",
    ]) {
      expect(route("GET", p), p).toEqual({ miss: "not-found" });
    }
  });
});
