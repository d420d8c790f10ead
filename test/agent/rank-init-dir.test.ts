// ferry-init's private working directory: made per rank start, recognised by
// path only under its base, kept while a process still works there, removed
// once none does.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RANK_INIT_DIR_BASE,
  RANK_INIT_ROOT_ENV,
  createRankInitDir,
  ensureRankInitDir,
  isRankInitDir,
  rankInitRoot,
  removeRankInitDir,
  sweepRankInitDirs,
} from '../../src/agent/rank-init-dir.js';

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

describe('sweeping rank init directories', () => {
  const saved = process.env[RANK_INIT_ROOT_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[RANK_INIT_ROOT_ENV];
    else process.env[RANK_INIT_ROOT_ENV] = saved;
  });

  it('removes the old unused ones only: not a fresh one, not one in use, not a non-empty one, nothing outside the root', async () => {
    const top = mkdtempSync(join(tmpdir(), 'ferry-init-sweep-'));
    try {
      const root = join(top, 'rank-init');
      process.env[RANK_INIT_ROOT_ENV] = root;
      expect(rankInitRoot()).toBe(root);
      expect(sweepRankInitDirs(0)).toBe(0); // no root yet
      const hourAgo = (Date.now() - 3_600_000) / 1000;
      const old = (name: string): string => {
        const d = join(root, name);
        mkdirSync(d, { recursive: true });
        utimesSync(d, hourAgo, hourAgo);
        return d;
      };
      const stale = old('a.0.111');
      const fresh = createRankInitDir('a', 1);
      const used = old('a.2.222');
      const full = old('a.3.333');
      writeFileSync(join(full, 'keep'), '');
      utimesSync(full, hourAgo, hourAgo);
      const outsider = join(top, 'b.0.444');
      mkdirSync(outsider);
      utimesSync(outsider, hourAgo, hourAgo);
      const p = spawn('sleep', ['30'], { cwd: used, stdio: 'ignore' });
      try {
        await until('sleep to run', () => p.pid !== undefined);
        expect(sweepRankInitDirs(60_000)).toBe(1);
        expect(existsSync(stale)).toBe(false);
        for (const kept of [fresh, used, full, outsider]) expect(existsSync(kept)).toBe(true);
      } finally {
        p.kill('SIGKILL');
      }
      await until('sleep to end', () => p.exitCode !== null || p.signalCode !== null);
      // Its user gone, the old one goes on the next sweep.
      await until('the used directory to be swept', () => sweepRankInitDirs(60_000) === 1 && !existsSync(used));
      // An old one a restore is about to use again is made fresh, so the sweep leaves it.
      const reused = old('a.4.444');
      ensureRankInitDir(reused);
      expect(sweepRankInitDirs(60_000)).toBe(0);
      expect(existsSync(reused)).toBe(true);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
