import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Ranks that tests start outside a local cluster (which has its own) keep their
// init directories here, not in /tmp/ferry-rank-init; test/global-setup.ts
// removes it after the run.
process.env.FERRY_RANK_INIT_ROOT ??= join(tmpdir(), `ferry-test-rank-init-${process.pid}`);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    env: { FERRY_RANK_INIT_ROOT: process.env.FERRY_RANK_INIT_ROOT },
    globalSetup: ['test/global-setup.ts'],
  },
});
