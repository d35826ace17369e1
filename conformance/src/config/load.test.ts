import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CONFIG_KEYS, envVarName, renderConfigTable } from "./keys.js";
import { ConfigError, loadConfig } from "./load.js";

const dir = mkdtempSync(join(tmpdir(), "margo-conf-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const WFM_YAML = `
wfm:
  url: https://127.0.0.1:9443
  spiffeId: spiffe://td/margo/wfm/w
  trustBundleFile: certs/bundle.pem
  clients:
    dirs: [a, /abs/b]
  driver:
    kind: grpc
    address: 127.0.0.1:7000
    certFile: op/cert.pem
    keyFile: op/key.pem
    caFile: op/ca.pem
`;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("envVarName", () => {
  it("splits camelCase into words", () => {
    expect(envVarName("device.composeHost.preloadImages")).toBe(
      "MARGO_CONFORMANCE_DEVICE_COMPOSE_HOST_PRELOAD_IMAGES",
    );
    expect(envVarName("wfm.url")).toBe("MARGO_CONFORMANCE_WFM_URL");
    expect(envVarName("checkTimeoutMs")).toBe("MARGO_CONFORMANCE_CHECK_TIMEOUT_MS");
  });
  it("gives every key a distinct variable", () => {
    const names = CONFIG_KEYS.map((k) => envVarName(k.path));
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("loadConfig", () => {
  it("applies defaults, resolves relative paths against the file's folder, selects configured suites", () => {
    const c = loadConfig(file("a.yaml", WFM_YAML), {}, { cwd: "/somewhere" });
    expect(c.suites).toEqual(["wfm"]);
    expect(c.wfm?.trustBundleFile).toBe(join(dir, "certs/bundle.pem"));
    expect(c.wfm?.clients.dirs).toEqual([join(dir, "a"), "/abs/b"]);
    expect(c.wfm?.driver).toMatchObject({ kind: "grpc", certFile: join(dir, "op/cert.pem") });
    expect(c.checkTimeoutMs).toBe(30000);
    expect(c.parallelSuites).toBe(true);
    expect(c.select).toEqual({
      include: [],
      exclude: [],
      features: [],
      parts: ["core", "extended"],
    });
    expect(c.output).toEqual({
      dir: resolve("/somewhere", "conformance-report"),
      formats: ["json", "junit", "html"],
    });
    expect(c.registry).toEqual({ address: "127.0.0.1:5000", plainHttp: true });
    expect(c.device).toBeUndefined();
  });

  it("lets env override every kind of key (string, number, boolean, lists as JSON or commas, maps)", () => {
    const env = {
      MARGO_CONFORMANCE_WFM_URL: "https://127.0.0.2:443",
      MARGO_CONFORMANCE_CHECK_TIMEOUT_MS: "1234",
      MARGO_CONFORMANCE_PARALLEL_SUITES: "false",
      MARGO_CONFORMANCE_SELECT_INCLUDE: "wfm.manifest, wfm.transport",
      MARGO_CONFORMANCE_SELECT_PARTS: '["core"]',
      MARGO_CONFORMANCE_DEVICE_COMPOSE_HOST_PRELOAD_IMAGES: "img:1,img:2",
      MARGO_CONFORMANCE_DEVICE_LAUNCH_COMMAND: "bash launch.sh",
      MARGO_CONFORMANCE_DEVICE_LAUNCH_ENV: '{"A":"1"}',
      MARGO_CONFORMANCE_WFM_TRUST_BUNDLE_FILE: "rel/b.pem",
      MARGO_CONFORMANCE_DOCKER_HOST: "unix:///reserved-for-children",
      MARGO_REGISTRY: "127.0.0.1:5999",
    };
    const c = loadConfig(file("b.yaml", WFM_YAML), env, { cwd: "/cwd" });
    expect(c.wfm?.url).toBe("https://127.0.0.2:443");
    expect(c.wfm?.trustBundleFile).toBe("/cwd/rel/b.pem");
    expect(c.checkTimeoutMs).toBe(1234);
    expect(c.parallelSuites).toBe(false);
    expect(c.select.include).toEqual(["wfm.manifest", "wfm.transport"]);
    expect(c.select.parts).toEqual(["core"]);
    expect(c.registry.address).toBe("127.0.0.1:5999");
    // the device section is configured by env alone, with its defaults
    expect(c.suites).toEqual(["wfm", "device"]);
    expect(c.device).toMatchObject({
      launch: { command: "bash launch.sh", env: { A: "1" }, readyTimeoutMs: 30000 },
      composeHost: {
        enabled: true,
        preloadImages: ["img:1", "img:2"],
        sourceDockerHost: "unix:///var/run/docker.sock",
      },
      helm: { enabled: true },
      trustDomain: "device.conformance.test",
    });
  });

  it("works from env alone (no file)", () => {
    const c = loadConfig(
      undefined,
      { MARGO_CONFORMANCE_PACKAGE_SOURCES: "127.0.0.1:5000/apps/x:1" },
      { cwd: dir },
    );
    expect(c.suites).toEqual(["package"]);
    expect(c.package?.sources).toEqual(["127.0.0.1:5000/apps/x:1"]);
  });

  it("lists every problem at once: unknown key, wrong types, missing required keys, bad env values", () => {
    const p = problems(() =>
      loadConfig(
        file(
          "bad.yaml",
          `
checkTimeoutMs: soon
colour: red
wfm:
  url: 5
  driver:
    kind: shell
    commands: { info: x }
    address: 1.2.3.4:5
device:
  composeHost: { enabled: yes-please }
`,
        ),
        { MARGO_CONFORMANCE_PARALLEL_SUITES: "maybe", MARGO_CONFORMANCE_WFM_URLL: "x" },
      ),
    );
    expect(p).toEqual(
      expect.arrayContaining([
        "unknown key colour",
        'checkTimeoutMs: expected a number, got string "soon"',
        "wfm.url: expected a string, got number 5",
        'device.composeHost.enabled: expected true or false, got string "yes-please"',
        'MARGO_CONFORMANCE_PARALLEL_SUITES: expected true or false, got "maybe"',
        "unknown environment variable MARGO_CONFORMANCE_WFM_URLL (no such configuration key)",
        "missing required key wfm.spiffeId (MARGO_CONFORMANCE_WFM_SPIFFE_ID) for suite wfm",
        "missing required key wfm.driver.commands.reset (MARGO_CONFORMANCE_WFM_DRIVER_COMMANDS_RESET) for suite wfm",
        "wfm.driver.address only applies to wfm.driver.kind=grpc (kind is shell)",
      ]),
    );
    expect(p.some((x) => x.startsWith("device suite needs device.launch.command"))).toBe(true);
  });

  it("refuses a selected suite without a section, and a file that is not a mapping", () => {
    expect(
      problems(() => loadConfig(file("c.yaml", WFM_YAML), {}, { suites: ["device"] })),
    ).toEqual(["suite device is selected but the configuration has no 'device' section"]);
    expect(() => loadConfig(file("d.yaml", "- a\n- b\n"))).toThrow(ConfigError);
    expect(() => loadConfig(join(dir, "missing.yaml"))).toThrow(/cannot read config file/);
  });

  it("keeps OCI references and templates as they are, resolves package folders", () => {
    file("pkg-marker", "");
    const c = loadConfig(
      file(
        "e.yaml",
        "package:\n  sources: [pkg-marker, ./x, reg:5000/a/b:1]\ndevice:\n  driver: { address: 127.0.0.1:1, tokenFile: '{workdir}/token' }\n",
      ),
      {},
    );
    expect(c.package?.sources).toEqual([join(dir, "pkg-marker"), join(dir, "x"), "reg:5000/a/b:1"]);
    expect(c.device?.driver.tokenFile).toBe("{workdir}/token");
  });
});

/** Table rows as trimmed cells; the separator row is dropped (its dash count is formatting). */
function cells(table: string): string[][] {
  return table
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^\|[\s|:-]+\|$/.test(l.trim()))
    .map((l) =>
      l
        .trim()
        .replace(/^\|/, "")
        .replace(/\|$/, "")
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

describe("README configuration table", () => {
  it("is the table generated from CONFIG_KEYS (run `npx tsx conformance/src/config/readme-table.ts` to refresh)", () => {
    const readme = readFileSync(
      resolve(dirname(fileURLToPath(import.meta.url)), "../../README.md"),
      "utf8",
    );
    const m = /<!-- config-table:begin -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
    expect(m, "README lacks the config-table markers").not.toBeNull();
    // Compared cell by cell: a markdown formatter may pad the columns.
    expect(cells(m?.[1] ?? "")).toEqual(cells(renderConfigTable()));
    for (const k of CONFIG_KEYS) expect(readme).toContain(envVarName(k.path));
  });
});
