#!/usr/bin/env node
/**
 * Shell-driver adapter for the reference WFM's operator CLI (`margo-wfm ... --json`), used by
 * conformance/examples/reference-wfm-shell-driver.yaml. It exists because the CLI speaks the admin
 * API's JSON (e.g. `{deployment:{...}}`), not WfmDriverService responses, and because a shell
 * template cannot leave out an option whose placeholder is empty. Plain .mjs so each call costs one
 * node start, not a TypeScript loader.
 *
 *   node margo-wfm-cli-adapter.mjs <op> [--name value]...
 *
 * Exit codes follow the shell driver's contract: 64 = the WFM refused (margo-wfm exit 1), anything
 * else non-zero = environment. The CLI binary is MARGO_WFM_BIN or the repo's reference-wfm/bin.
 * The data directory comes from MARGO_WFM_DATA_DIR, which margo-wfm reads itself.
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.MARGO_WFM_BIN ?? join(here, "../../../../../reference-wfm/bin/margo-wfm");

/** The info the CLI cannot give (it has no Info command): what the reference WFM claims. */
const INFO = {
  vendor: "Margo reference implementation",
  product: "margo-reference-wfm (operator CLI via shell driver)",
  version: "0.0.0",
  margoVersion: "1.0.0-rc.3",
  features: ["gateway-children", "bundle", "content-encoding"],
};

class Refused extends Error {}

function options(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k?.startsWith("--")) throw new Error(`unexpected argument ${k}`);
    const v = argv[i + 1] ?? "";
    // An empty value means "not given": templates always name every placeholder.
    if (v !== "") out[k.slice(2)] = v;
  }
  return out;
}

function cli(args) {
  return new Promise((resolve, reject) => {
    execFile(BIN, [...args, "--json"], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout.trim() ? JSON.parse(stdout) : {});
      const msg = `margo-wfm ${args.join(" ")}: ${stderr.trim() || err.message}`;
      reject(err.code === 1 ? new Refused(msg) : new Error(msg));
    });
  });
}

const opt = (o, name, flag = `--${name}`) => (o[name] !== undefined ? [flag, o[name]] : []);

const OPS = {
  info: async () => INFO,
  // The CLI has no reset: removing every deployment gives each client an empty desired state,
  // which is what the checks that need a clean WFM rely on.
  reset: async () => {
    const { deployments = [] } = await cli(["deployments", "list"]);
    for (const d of deployments) await cli(["undeploy", d.deploymentId]);
    return {};
  },
  publish: async (o) => {
    const r = await cli([
      "app",
      "register",
      o.ref,
      ...(o["plain-http"] === "true" ? ["--plain-http"] : []),
    ]);
    return { applicationId: r.application?.applicationId, version: r.application?.version };
  },
  deploy: async (o) => {
    const r = await cli([
      "deploy",
      o.app,
      ...opt(o, "client"),
      ...opt(o, "device"),
      ...opt(o, "version"),
      ...opt(o, "profile"),
      ...opt(o, "profile-type"),
      ...opt(o, "params-file"),
    ]);
    return { deploymentId: r.deployment?.deploymentId };
  },
  update: async (o) => {
    await cli(["update", o.deployment, ...opt(o, "params-file")]);
    return {};
  },
  undeploy: async (o) => {
    await cli(["undeploy", o.deployment]);
    return {};
  },
  statuses: async (o) => {
    const r = await cli(["status", "list", ...opt(o, "client"), ...opt(o, "deployment")]);
    return {
      statuses: (r.statuses ?? []).map((s) => ({
        clientId: s.clientId,
        status: s.status,
        ...(s.reportedAt ? { receivedAt: s.reportedAt } : {}),
      })),
    };
  },
  capabilities: async (o) => {
    const { devices = [] } = await cli(["devices", "list", ...opt(o, "client")]);
    const d = devices.find((x) => x.deviceId === o.device && x.clientId === o.client);
    return d
      ? {
          found: true,
          capabilities: d.capabilities,
          ...(d.reportedAt ? { receivedAt: d.reportedAt } : {}),
        }
      : { found: false };
  },
};

const [op, ...rest] = process.argv.slice(2);
const fn = OPS[op ?? ""];
if (!fn) {
  process.stderr.write(
    `usage: margo-wfm-cli-adapter.mjs <${Object.keys(OPS).join("|")}> [--name value]...\n`,
  );
  process.exit(2);
}
try {
  process.stdout.write(`${JSON.stringify(await fn(options(rest)))}\n`);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(e instanceof Refused ? 64 : 2);
}
