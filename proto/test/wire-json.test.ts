import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  MAX_DEPTH,
  parseJson,
  parseYaml,
  stringifyYaml,
  WireEncodeError,
} from "../src/wire/index.js";

describe("parseJson keeps integers exact", () => {
  it("reads 2^64-1 as a bigint and small integers as numbers", () => {
    const { value, problems } = parseJson(
      '{"big":18446744073709551615,"small":42,"neg":-9007199254740993}',
    );
    expect(problems).toEqual([]);
    expect(value).toEqual({ big: 18446744073709551615n, small: 42, neg: -9007199254740993n });
  });

  it("reads exponent and fraction spellings of a large integer exactly", () => {
    const { value } = parseJson("[1.8446744073709551615e19, 184467440737095516150e-1, 1e21]");
    expect(value).toEqual([18446744073709551615n, 18446744073709551615n, 10n ** 21n]);
  });

  it("keeps non-integers as doubles", () => {
    const { value } = parseJson("[0.1, 1.5e-7, 9007199254740993.5]");
    expect(value).toEqual([0.1, 1.5e-7, 9007199254740994]);
  });

  it("reports numbers beyond double range instead of reading Infinity", () => {
    expect(parseJson('{"a":[1e400]}').problems).toEqual([
      expect.objectContaining({ rule: "wire.number-range", pointer: "/a/0" }),
    ]);
  });

  it("reports syntax errors, bad UTF-8, duplicate members and excessive nesting as problems", () => {
    expect(parseJson("{").problems[0]?.rule).toBe("wire.syntax");
    expect(parseJson("").problems[0]?.rule).toBe("wire.syntax");
    expect(parseJson(new Uint8Array([0x7b, 0xff, 0x7d])).problems[0]?.rule).toBe("wire.syntax");
    expect(parseJson('{"a":1,"a":2}').problems[0]?.rule).toBe("wire.syntax");
    expect(parseJson("[".repeat(100_000)).problems[0]?.rule).toBe("wire.depth");
    expect(parseJson(`${"[".repeat(MAX_DEPTH)}${"]".repeat(MAX_DEPTH)}`).problems).toEqual([]);
    expect(
      parseJson(`${"[".repeat(MAX_DEPTH + 1)}${"]".repeat(MAX_DEPTH + 1)}`).problems[0]?.rule,
    ).toBe("wire.depth");
  });

  it('keeps a "__proto__" member as data', () => {
    const { value } = parseJson('{"__proto__":{"polluted":true}}');
    expect(Object.keys(value as object)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("canonicalJson is RFC 8785 (JCS)", () => {
  it("sorts members by UTF-16 code units and writes no whitespace", () => {
    // RFC 8785 section 3.2.3 sorting example (keys only).
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew",
      "1": "One",
      "\ud83d\ude00": "Emoji",
      "\u0080": "Control",
      "\u00f6": "Latin",
    };
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji","\ufb33":"Hebrew"}',
    );
  });

  it("formats numbers the ECMAScript way and bigints as plain integers", () => {
    expect(
      canonicalJson([0.1, -0, 1.5e-7, 1e300, Number("333333333.33333329"), 4.5, 2e-3, 100]),
    ).toBe("[0.1,0,1.5e-7,1e+300,333333333.3333333,4.5,0.002,100]");
    expect(canonicalJson({ v: 18446744073709551615n })).toBe('{"v":18446744073709551615}');
  });

  it("escapes strings minimally", () => {
    expect(canonicalJson('a"b\\c\n\u0001\u007f/')).toBe('"a\\"b\\\\c\\n\\u0001\u007f/"');
  });

  it("gives equal bytes for equal content whatever the insertion order", () => {
    expect(canonicalJson({ b: [1, { y: 1, x: 2 }], a: null })).toBe(
      canonicalJson({ a: null, b: [1, { x: 2, y: 1 }] }),
    );
  });

  it("refuses what JSON cannot carry", () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(WireEncodeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(WireEncodeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(WireEncodeError);
  });
});

describe("YAML text", () => {
  it("reads integers exactly and keeps quoted numbers as strings", () => {
    expect(
      parseYaml('a: 18446744073709551615\nb: "120"\nc: 1.5\nd: true\ne: 0x10\n').value,
    ).toEqual({
      a: 18446744073709551615n,
      b: "120",
      c: 1.5,
      d: true,
      e: 16,
    });
  });

  it("reports duplicate keys, unknown tags, several documents, NaN and alias bombs", () => {
    expect(parseYaml("a: 1\na: 2\n").problems[0]?.rule).toBe("wire.syntax");
    expect(parseYaml("a: !custom 1\n").problems).toEqual([
      expect.objectContaining({ rule: "wire.yaml-type", pointer: "/a" }),
    ]);
    expect(parseYaml("a: 1\n---\nb: 2\n").problems[0]?.rule).toBe("wire.syntax");
    expect(parseYaml("a: .nan\n").problems).toEqual([
      expect.objectContaining({ rule: "wire.number-range", pointer: "/a" }),
    ]);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${"bcdefghi"[i]}: &${"bcdefghi"[i]} [${Array(9)
          .fill(`*${i === 0 ? "a" : "bcdefghi"[i - 1]}`)
          .join(", ")}]`,
      );
    expect(parseYaml(bomb.join("\n")).problems[0]?.rule).toBe("wire.syntax");
  });

  it("refuses YAML types with no JSON equivalent at their pointer instead of reading {}", () => {
    // Before: !!binary read as {"0":104,...}, a timestamp / !!set / !!omap as {}, no problem.
    const cases: Array<[string, string]> = [
      ["a: !!binary aGVsbG8=\n", "/a"],
      ["a: !!timestamp 2001-12-14\n", "/a"],
      ["a:\n  b: !!set {x, y}\n", "/a/b"],
      ["a: [1, !!omap [{k: 1}]]\n", "/a/1"],
      ["a: !!pairs [{k: 1}]\n", "/a"],
      ["!!binary aGk= : 1\n", "/aGk="],
      ["a: !local {b: 1}\n", "/a"],
    ];
    for (const [text, at] of cases) {
      const parsed = parseYaml(text);
      expect(parsed.value, text).toBeUndefined();
      expect(parsed.problems, text).toEqual([
        expect.objectContaining({ rule: "wire.yaml-type", pointer: at, severity: "error" }),
      ]);
    }
    expect(parseYaml("? [a, b]\n: 1\n").problems).toEqual([
      expect.objectContaining({ rule: "wire.yaml-type", pointer: "" }),
    ]);
  });

  it("reports every non-JSON node, not just the first", () => {
    const parsed = parseYaml("a: !!binary aGk=\nb: ok\nc: [!!timestamp 2001-12-14]\n");
    expect(parsed.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["wire.yaml-type", "/a"],
      ["wire.yaml-type", "/c/0"],
    ]);
  });

  it("reads the YAML 1.2 core tags !!float !!int !!str !!bool !!null !!map !!seq", () => {
    // Before: "!!float 1" was an "Unresolved tag" syntax problem; the core float pattern
    // includes integer spellings (YAML 1.2.2 section 10.3.2).
    const parsed = parseYaml(
      "a: !!float 1\nb: !!int 3\nc: !!str 3\nd: !!bool true\ne: !!null ''\n" +
        "f: !!map {g: !!float -1.5e3}\nh: !!seq [!!float .5]\ni: ! 12\n",
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.value).toEqual({
      a: 1,
      b: 3,
      c: "3",
      d: true,
      e: null,
      f: { g: -1500 },
      h: [0.5],
      i: "12",
    });
    expect(parseYaml("a: !!float .inf\n").problems).toEqual([
      expect.objectContaining({ rule: "wire.number-range", pointer: "/a" }),
    ]);
  });

  it("reports a core-tagged value that does not fit its tag at its pointer", () => {
    const parsed = parseYaml("a: !!int abc\nb: !!float x\nc: !!bool yes\nd: !!str {e: 1}\n");
    expect(parsed.problems.map((p) => [p.rule, p.pointer])).toEqual([
      ["wire.yaml-type", "/a"],
      ["wire.yaml-type", "/b"],
      ["wire.yaml-type", "/c"],
      ["wire.yaml-type", "/d"],
    ]);
  });

  it("caps syntax problems for badly broken input and survives deep nesting", () => {
    expect(parseYaml("[".repeat(100_000)).problems.length).toBeLessThanOrEqual(11);
    expect(parseYaml(`${"- ".repeat(5000)}x`).problems.length).toBeGreaterThan(0);
  });

  it("writes deterministic YAML that quotes strings which would read as other types", () => {
    const text = stringifyYaml({
      s: "120",
      t: "true",
      n: 120,
      e: "",
      m: "a: b",
      big: 18446744073709551615n,
    });
    expect(text).toBe('s: "120"\nt: "true"\nn: 120\ne: ""\nm: "a: b"\nbig: 18446744073709551615\n');
    expect(parseYaml(text).value).toEqual({
      s: "120",
      t: "true",
      n: 120,
      e: "",
      m: "a: b",
      big: 18446744073709551615n,
    });
  });
});
