/**
 * Rewrites the configuration table in conformance/README.md from CONFIG_KEYS
 * (`npx tsx conformance/src/config/readme-table.ts`). The unit test fails when they differ, so a
 * new key cannot ship undocumented.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderConfigTable } from "./keys.js";

const readmePath = resolve(dirname(fileURLToPath(import.meta.url)), "../../README.md");
const readme = readFileSync(readmePath, "utf8");
const re = /<!-- config-table:begin -->\n[\s\S]*?<!-- config-table:end -->/;
if (!re.test(readme)) throw new Error(`${readmePath}: no <!-- config-table:begin/end --> markers`);
writeFileSync(
  readmePath,
  readme.replace(
    re,
    `<!-- config-table:begin -->\n${renderConfigTable()}\n<!-- config-table:end -->`,
  ),
);
console.log(`updated ${readmePath}`);
