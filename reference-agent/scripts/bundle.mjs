// Bundles the agent's CLI into one ESM file, reference-agent/dist/margo-agent.mjs, which
// bin/margo-agent runs with plain node. Why a bundle for the agent only: a device agent idles for
// days, and running the TypeScript sources through tsx's loader costs ~24 MB of RSS (its hooks run
// in a worker thread) against an idle target of 60 MB. Native and lazily used modules stay external
// (better-sqlite3 is a .node addon; grpc-js and client-node load only with watch/driver/helm).
// The bundle is a build output (ignored by git), rebuilt by the test command and whenever a source
// is newer; the shim falls back to tsx when it is missing or stale, so editing never runs old code.
import { mkdir, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const workspace = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(workspace, "dist", "margo-agent.mjs");
// Written beside the target and renamed in, so an agent starting meanwhile never reads half a file.
const tmp = `${out}.${process.pid}.tmp`;
await mkdir(dirname(out), { recursive: true });
await build({
  entryPoints: [join(workspace, "src", "cli", "main.ts")],
  outfile: tmp,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "@grpc/grpc-js", "@kubernetes/client-node"],
  // Bundled CommonJS dependencies call require(); ESM output has none of its own.
  banner: {
    js: "import { createRequire as __margoRequire } from 'node:module'; const require = __margoRequire(import.meta.url);",
  },
  logLevel: "warning",
});
await rename(tmp, out);
console.log(`bundled ${out}`);
