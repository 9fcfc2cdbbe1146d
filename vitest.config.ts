import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build (its package.json has no "exports"), and so do Apollo and graphql-armor;
    // Vite would pick the ES build ("module") for our files, a second graphql realm whose schemas and errors the
    // first does not recognise. Tests use the one Node uses.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: each file starts a whole platform, so run two files at a time.
    maxWorkers: 2,
  },
});
