import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Ranks that tests start outside a local cluster (which has its own) keep their
// init directories here, not in /tmp/ferry-rank-init, and CRIU dumps take their
// turns through lock files here, not in /tmp/ferry-criu-scratch-locks;
// test/global-setup.ts removes both after the run.
process.env.FERRY_RANK_INIT_ROOT ??= join(tmpdir(), `ferry-test-rank-init-${process.pid}`);
process.env.FERRY_CRIU_LOCK_DIR ??= join(tmpdir(), `ferry-test-criu-locks-${process.pid}`);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    env: { FERRY_RANK_INIT_ROOT: process.env.FERRY_RANK_INIT_ROOT, FERRY_CRIU_LOCK_DIR: process.env.FERRY_CRIU_LOCK_DIR },
    globalSetup: ['test/global-setup.ts'],
  },
});
