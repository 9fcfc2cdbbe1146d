/**
 * `npm run test:prometheus`: the Prometheus test alone (its own CI step, test/prometheus/): it starts a platform in
 * processes, Debian's Prometheus and the CI load, so it stays out of `npm test`.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  // As in vitest.config.ts: the graphql build Node loads, not Vite's ES one.
  resolve: { alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }] },
  test: { include: ['test/prometheus/**/*.test.ts'], testTimeout: 240_000, hookTimeout: 300_000, pool: 'forks' },
});
