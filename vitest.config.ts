import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real-cluster suite needs root and minutes: `npm run e2e` (vitest.e2e.config.ts).
    exclude: [...configDefaults.exclude, 'test/e2e/**'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 900_000,
    // Suites share one S3 server and one Ray head; files run in parallel but are cheap on CPU.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
