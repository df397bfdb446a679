import { defineConfig } from 'vitest/config';

// The real-cluster suite (`npm run e2e`): needs root, runc and debootstrap; builds its nodes itself and caches
// them under ~/.cache/tokenize-wiki/e2e/. Kept out of `npm test` (vitest.config.ts excludes test/e2e/).
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 1_800_000,
    // Nodes share two cores with everything else: one file at a time.
    fileParallelism: false,
    maxWorkers: 1,
  },
});
