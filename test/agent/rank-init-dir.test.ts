// ferry-init's private working directory: made per rank start, recognised by
// path only under its base, kept while a process still works there, removed
// once none does.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RANK_INIT_DIR_BASE, createRankInitDir, ensureRankInitDir, isRankInitDir, removeRankInitDir } from '../../src/agent/rank-init-dir.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) removeRankInitDir(d);
});

async function until(what: string, probe: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rank init directories', () => {
  it('recognises only its own directories', () => {
    expect(isRankInitDir(`${RANK_INIT_DIR_BASE}/job.0.abc`)).toBe(true);
    expect(isRankInitDir(RANK_INIT_DIR_BASE)).toBe(false);
    expect(isRankInitDir(`${RANK_INIT_DIR_BASE}/a/b`)).toBe(false);
    expect(isRankInitDir(`${RANK_INIT_DIR_BASE}/..`)).toBe(false);
    expect(isRankInitDir('/work/job')).toBe(false);
    ensureRankInitDir('/tmp/not-ours-ferry-test'); // not under the base: never made
    expect(existsSync('/tmp/not-ours-ferry-test')).toBe(false);
  });

  it('keeps a directory while a process works there and removes it once none does', async () => {
    const dir = createRankInitDir('t', 3);
    made.push(dir);
    expect(dir.startsWith(`${RANK_INIT_DIR_BASE}/t.3.`)).toBe(true);
    const p = spawn('sleep', ['30'], { cwd: dir, stdio: 'ignore' });
    await until('sleep to run', () => p.pid !== undefined);
    removeRankInitDir(dir);
    expect(existsSync(dir)).toBe(true);
    p.kill('SIGKILL');
    await until('the directory to go', () => !existsSync(dir));
    // A restore recreates it by path.
    ensureRankInitDir(dir);
    expect(existsSync(dir)).toBe(true);
  });
});
