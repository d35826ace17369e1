import { describe, expect, it } from "vitest";
import {
  CatalogueError,
  levelRank,
  loadCatalogue,
  parseCatalogue,
  type Requirement,
} from "../src/catalogue/index.js";
import type { Level } from "../src/core/types.js";
import { allChecks } from "../src/suites/all.js";

// The catalogue is the harness's promise to vendors: every check cites real requirements at the
// right level, and every MUST is either checked or has a written reason why it cannot be.

const catalogue = loadCatalogue();
const byId = new Map(catalogue.map((r) => [r.id, r]));
const checks = allChecks();

function strongest(ids: readonly string[]): Level | undefined {
  let best: Level | undefined;
  for (const id of ids) {
    const r = byId.get(id);
    if (r && (best === undefined || levelRank(r.level) > levelRank(best))) best = r.level;
  }
  return best;
}

describe("catalogue validator", () => {
  const good = {
    id: "wfm-039",
    level: "MUST",
    persona: "wfm",
    section: "desired-state; digest 6.1",
    checklistItem: 39,
    text: "ETag is the body digest.",
  };

  it("accepts a well-formed entry", () => {
    expect(parseCatalogue({ requirements: [good] })).toHaveLength(1);
  });

  it("lists every problem at once: duplicates, id grammar, persona prefix, levels, suffix level", () => {
    const bad = {
      requirements: [
        good,
        { ...good }, // duplicate
        { ...good, id: "WFM-40", checklistItem: 40 }, // grammar
        { ...good, id: "device-041", checklistItem: 41 }, // prefix vs persona
        { ...good, id: "wfm-042", checklistItem: 42, level: "MAYBE" }, // level
        { ...good, id: "wfm-049s", checklistItem: 49 }, // s-suffix must be SHOULD
        { ...good, id: "wfm-043", checklistItem: 44 }, // number vs item
        { ...good, id: "wfm-100" }, // OpenAPI addition with a checklist item
        { ...good, id: "wfm-050", checklistItem: 50, untestable: "" }, // empty reason
        { ...good, id: "wfm-051", checklistItem: 51, extra: 1 }, // unknown key
      ],
    };
    let err: unknown;
    try {
      parseCatalogue(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CatalogueError);
    const problems = (err as CatalogueError).problems.join("\n");
    expect(problems).toMatch(/requirements\[1\].*duplicate id/);
    expect(problems).toMatch(/WFM-40.*id must match/);
    expect(problems).toMatch(/device-041.*does not match persona wfm/);
    expect(problems).toMatch(/wfm-042.*level must be one of/);
    expect(problems).toMatch(/wfm-049s.*level must be SHOULD/);
    expect(problems).toMatch(/wfm-043.*checklistItem must be 43/);
    expect(problems).toMatch(/wfm-100.*carry no checklistItem/);
    expect(problems).toMatch(/wfm-050.*untestable must give the reason/);
    expect(problems).toMatch(/wfm-051.*unknown key extra/);
    expect((err as CatalogueError).problems).toHaveLength(9);
  });

  it("refuses a document without a requirements list", () => {
    expect(() => parseCatalogue({ reqs: [] })).toThrow(CatalogueError);
  });
});

describe("requirement catalogue", () => {
  it("covers every checklist item 1-91 of digest 13.2", () => {
    const items = new Set(catalogue.map((r) => r.checklistItem).filter((n) => n !== undefined));
    const missing = Array.from({ length: 91 }, (_, i) => i + 1).filter((n) => !items.has(n));
    expect(missing).toEqual([]);
  });

  it("gives an untestable reason only where no check cites the requirement", () => {
    const cited = new Set(checks.flatMap((c) => c.requirements));
    const contradictions = catalogue
      .filter((r) => r.untestable && cited.has(r.id))
      .map((r) => r.id);
    expect(contradictions, "requirements marked untestable but cited by a check").toEqual([]);
  });
});

describe("checks against the catalogue", () => {
  it("have unique ids of the form <suite>.<family-area>.<what> with family = first two segments", () => {
    const seen = new Map<string, number>();
    for (const c of checks) seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
    expect([...seen].filter(([, n]) => n > 1).map(([id]) => id)).toEqual([]);
    const bad = checks
      .filter(
        (c) =>
          !/^[a-z]+(\.[a-z0-9]+(-[a-z0-9]+)*){2,}$/.test(c.id) ||
          !c.id.startsWith(`${c.suite}.`) ||
          c.family !== c.id.split(".").slice(0, 2).join("."),
      )
      .map((c) => c.id);
    expect(bad).toEqual([]);
  });

  it("cite at least one requirement, and only ids the catalogue has", () => {
    const unknown = checks.flatMap((c) =>
      c.requirements.length === 0
        ? [`${c.id}: cites nothing`]
        : c.requirements.filter((id) => !byId.has(id)).map((id) => `${c.id}: ${id}`),
    );
    expect(unknown).toEqual([]);
  });

  it("have the level of the strongest requirement they cite", () => {
    const wrong = checks
      .filter((c) => c.requirements.every((id) => byId.has(id)))
      .filter((c) => strongest(c.requirements) !== c.level)
      .map((c) => `${c.id}: level ${c.level}, strongest cited ${strongest(c.requirements)}`);
    expect(wrong).toEqual([]);
  });

  it("cover every MUST, or the MUST says why it cannot be tested (or why it is a known gap)", () => {
    const cited = new Set(checks.flatMap((c) => c.requirements));
    const musts = catalogue.filter((r) => r.level === "MUST");
    const covered = musts.filter((r) => cited.has(r.id));
    const untestable = musts.filter((r) => !cited.has(r.id) && r.untestable);
    const gaps = musts.filter((r) => !cited.has(r.id) && r.notCovered);
    const uncovered: Requirement[] = musts.filter(
      (r) => !cited.has(r.id) && !r.untestable && !r.notCovered,
    );
    console.log(
      `catalogue: ${catalogue.length} requirements, ${musts.length} MUSTs, ${covered.length} MUSTs covered by checks, ${untestable.length} untestable, ${gaps.length} known gaps (${gaps.map((r) => r.id).join(", ")}), ${uncovered.length} uncovered; ${checks.length} checks`,
    );
    expect(
      catalogue.filter((r) => r.notCovered && cited.has(r.id)).map((r) => r.id),
      "requirements marked notCovered but cited by a check",
    ).toEqual([]);
    expect(uncovered.map((r) => r.id)).toEqual([]);
  });
});
