import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (`main`) and ESM (`module`) builds. Node loads the CommonJS one for every import
    // (no `exports` map), and so does Apollo here; Vite would pick the ESM one for our sources, and graphql's
    // instanceof checks then fail across the two copies ("from another module or realm"). Same copy as in production.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: each file starts a whole platform, so run two files at a time.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'platform', include: ['test/**/*.test.ts'], exclude: ['test/subgraph-new.test.ts'] } },
      // Type-checks and tests a scratch copy of the project in child processes: after every other file, on
      // its own, so it never starves a CPU-bound test (pool-reuse) running beside it.
      { extends: true, test: { name: 'scratch copy', include: ['test/subgraph-new.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
