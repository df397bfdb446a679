import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 900_000,
    // Suites share one S3 server and one Ray head; files run in parallel but are cheap on CPU.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
