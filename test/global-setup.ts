// Once per test run: removes the rank init root the run's tests used (vitest.config.ts).
import { rmSync } from 'node:fs';

export default function setup(): () => void {
  return () => {
    const root = process.env.FERRY_RANK_INIT_ROOT;
    if (root) rmSync(root, { recursive: true, force: true });
  };
}
