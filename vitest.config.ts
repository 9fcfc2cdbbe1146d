import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

/** Measure one district's latency while another attacks or floods: they run after every other file, alone on the machine. */
const ALONE = ['test/abuse/abuse.test.ts', 'test/faults/slow-district.test.ts'];

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build (its package.json has no "exports"), and so do Apollo and graphql-armor;
    // Vite would pick the ES build ("module") for our files, a second graphql realm whose schemas and errors the
    // first does not recognise. Tests use the one Node uses.
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
      {
        extends: true,
        test: {
          name: 'platform',
          include: ['test/**/*.test.ts'],
          // test/prometheus/ runs on its own (npm run test:prometheus, test/prometheus/vitest.config.ts).
          exclude: ['test/subgraph-new.test.ts', 'test/prometheus/**', ...ALONE],
          sequence: { groupOrder: 0 },
        },
      },
      // Type-checks and tests a scratch copy of the project in child processes: after the others, on its own.
      { extends: true, test: { name: 'scratch copy', include: ['test/subgraph-new.test.ts'], sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'alone', include: ALONE, sequence: { groupOrder: 2 } } },
    ],
  },
});
