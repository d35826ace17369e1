import type { Problem } from "@margo/proto";
import { describe, expect, it } from "vitest";
import {
  componentLocation,
  failureFromProblems,
  pullComposeArchiveBytes,
} from "./oci-component.js";

const p = (rule: string, severity: Problem["severity"] = "error"): Problem => ({
  rule,
  pointer: "/layers/0",
  message: `${rule} happened`,
  severity,
});

describe("componentLocation", () => {
  it("splits oci:// and writes SemVer build metadata as _ in the tag", async () => {
    expect(await componentLocation("oci://reg.example:5000/a/b", "1.2.3+build.4", [])).toEqual({
      registry: "reg.example:5000",
      repository: "a/b",
      reference: "1.2.3_build.4",
      plainHttp: false,
    });
  });

  it("uses plain HTTP only for listed registries", async () => {
    const loc = await componentLocation("oci://127.0.0.1:5000/a", "1.0.0", ["127.0.0.1:5000"]);
    expect(loc.plainHttp).toBe(true);
    const other = await componentLocation("oci://127.0.0.1:5001/a", "1.0.0", ["127.0.0.1:5000"]);
    expect(other.plainHttp).toBe(false);
  });
});

describe("failureFromProblems", () => {
  it("a digest problem wins over layout problems", () => {
    const f = failureFromProblems("pull x", [p("oci.layer-media-type"), p("oci.digest-mismatch")]);
    expect(f.code).toBe("DIGEST_MISMATCH");
    expect(f.message).toContain("oci.digest-mismatch");
  });

  it("layout problems alone reject the artifact; warnings are not shown", () => {
    const f = failureFromProblems("pull x", [p("oci.artifact-type"), p("oci.note", "warning")]);
    expect(f).toEqual({
      code: "ARTIFACT_REJECTED",
      message: "pull x: oci.artifact-type at /layers/0: oci.artifact-type happened",
    });
  });
});

describe("pullComposeArchiveBytes", () => {
  it("a malformed repository is the artifact's fault, not a pull failure", async () => {
    const r = await pullComposeArchiveBytes(
      "https://x/y",
      "1.0.0",
      [],
      new AbortController().signal,
    );
    expect(r.ok === false && r.error.code).toBe("ARTIFACT_REJECTED");
  });

  it("an unreachable registry is PULL_FAILED", async () => {
    // Port 9 on loopback: nothing listens (discard), the connect is refused at once.
    const r = await pullComposeArchiveBytes(
      "oci://127.0.0.1:9/a",
      "1.0.0",
      ["127.0.0.1:9"],
      new AbortController().signal,
    );
    expect(r.ok === false && r.error.code).toBe("PULL_FAILED");
  });

  it("an aborted pull rejects instead of reporting a failure", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stopped"));
    await expect(
      pullComposeArchiveBytes("oci://127.0.0.1:9/a", "1.0.0", [], ac.signal),
    ).rejects.toThrow("stopped");
  });
});
