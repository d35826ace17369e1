import { defineConfig } from "vitest/config";

// One vitest run for every workspace: unit tests sit beside their code, tests that need the
// real environment (registry, oras, Docker) live under each workspace's test/ folder and expect
// scripts/bootstrap.sh to have run (scripts/test.sh does that first).
export default defineConfig({
  test: {
    include: ["*/src/**/*.test.ts", "*/test/**/*.test.ts", "scripts/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
