import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "./errors.js";
import { collectParameters, parseParamArg, readParamsFile } from "./params.js";

describe("--param k=v", () => {
  it("reads JSON values with their type and anything else as a string", () => {
    expect(parseParamArg("port=8080")).toEqual(["port", 8080]);
    expect(parseParamArg("debug=true")).toEqual(["debug", true]);
    expect(parseParamArg('tags=[1,"a"]')).toEqual(["tags", [1, "a"]]);
    expect(parseParamArg("greeting=hello world")).toEqual(["greeting", "hello world"]);
    expect(parseParamArg('quoted="8080"')).toEqual(["quoted", "8080"]);
    expect(parseParamArg("empty=")).toEqual(["empty", ""]);
    expect(parseParamArg("url=a=b")).toEqual(["url", "a=b"]);
  });

  it("refuses an argument without a key as a usage error", () => {
    expect(() => parseParamArg("novalue")).toThrow(UsageError);
    expect(() => parseParamArg("=1")).toThrow(UsageError);
  });
});

describe("--params-file", () => {
  it("reads YAML and JSON objects; --param entries override file entries", async () => {
    const dir = await mkdtemp(join(tmpdir(), "margo-cli-params-"));
    const yaml = join(dir, "p.yaml");
    await writeFile(yaml, "port: 8080\ngreeting: hi\nnested: {a: [1, 2]}\n");
    expect(await readParamsFile(yaml)).toEqual({
      port: 8080,
      greeting: "hi",
      nested: { a: [1, 2] },
    });
    const json = join(dir, "p.json");
    await writeFile(json, '{"port": 1, "debug": false}');
    expect(await collectParameters(["port=2"], json)).toEqual({ port: 2, debug: false });
  });

  it("refuses a non-object, unparseable or missing file, and integers a double cannot hold", async () => {
    const dir = await mkdtemp(join(tmpdir(), "margo-cli-params-"));
    const cases: [string, string][] = [
      ["list.yaml", "- 1\n- 2\n"],
      ["broken.json", '{"a": '],
      ["big.yaml", "n: 9007199254740993\n"],
    ];
    for (const [name, text] of cases) {
      await writeFile(join(dir, name), text);
      await expect(readParamsFile(join(dir, name))).rejects.toThrow(UsageError);
    }
    await expect(readParamsFile(join(dir, "absent.yaml"))).rejects.toThrow(UsageError);
  });
});
