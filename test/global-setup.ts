// Once per test run: removes the rank init root and the CRIU lock directory the run's tests used (vitest.config.ts).
import { rmSync } from 'node:fs';

export default function setup(): () => void {
  return () => {
    for (const dir of [process.env.FERRY_RANK_INIT_ROOT, process.env.FERRY_CRIU_LOCK_DIR]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  };
}
