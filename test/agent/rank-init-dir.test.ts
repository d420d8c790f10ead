// ferry-init's private working directory: made per rank start, recognised by
// path only under its base, kept while a process still works there, removed
// once none does.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AGENT_SOCKET_FILE,
  RANK_INIT_DIR_BASE,
  RANK_INIT_ROOT_ENV,
  createRankInitDir,
  agentSocketFile,
  ensureRankInitDir,
  isRankInitDir,
  rankInitRoot,
  removeRankInitDir,
  sweepRankInitDirs,
  writeAgentSocketFile,
} from '../../src/agent/rank-init-dir.js';

// Every test works under a root of its own (as a test cluster does), removed afterwards.
const saved = process.env[RANK_INIT_ROOT_ENV];
let top: string;
let root: string;
beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'ferry-init-dir-'));
  root = join(top, 'rank-init');
  process.env[RANK_INIT_ROOT_ENV] = root;
});
afterEach(() => {
  if (saved === undefined) delete process.env[RANK_INIT_ROOT_ENV];
  else process.env[RANK_INIT_ROOT_ENV] = saved;
  rmSync(top, { recursive: true, force: true });
});

async function until(what: string, probe: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rank init directories', () => {
  it('recognises only its own directories, under /tmp/ferry-rank-init unless FERRY_RANK_INIT_ROOT says otherwise', () => {
    expect(rankInitRoot()).toBe(root);
    expect(isRankInitDir(`${root}/job.0.abc`)).toBe(true);
    expect(isRankInitDir(root)).toBe(false);
    expect(isRankInitDir(`${root}/a/b`)).toBe(false);
    expect(isRankInitDir(`${root}/..`)).toBe(false);
    expect(isRankInitDir(`${RANK_INIT_DIR_BASE}/job.0.abc`)).toBe(false); // another root's
    expect(isRankInitDir('/work/job')).toBe(false);
    ensureRankInitDir(join(top, 'not-ours')); // not under the root: never made
    expect(existsSync(join(top, 'not-ours'))).toBe(false);
    delete process.env[RANK_INIT_ROOT_ENV];
    expect(rankInitRoot()).toBe(RANK_INIT_DIR_BASE);
  });

  it('keeps a directory while a process works there and removes it once none does', async () => {
    const dir = createRankInitDir('t', 3);
    expect(dir.startsWith(`${root}/t.3.`)).toBe(true);
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

  it("names the rank's agent in a file of its own, replaced whole, and goes with that file once unused", async () => {
    const dir = createRankInitDir('t', 5);
    writeAgentSocketFile(dir, 'ferry-agent');
    writeAgentSocketFile(dir, 'ferry-agent-b'); // the agent that restored it here
    expect(agentSocketFile(dir)).toBe(join(dir, AGENT_SOCKET_FILE));
    expect(readFileSync(agentSocketFile(dir), 'utf8')).toBe('ferry-agent-b\n');
    expect(readdirSync(dir)).toEqual([AGENT_SOCKET_FILE]); // no temp file left
    removeRankInitDir(dir);
    expect(existsSync(dir)).toBe(false);
    // A directory gone (swept, say) cannot be named in: the caller hears of it.
    expect(() => writeAgentSocketFile(dir, 'ferry-agent')).toThrow(/ENOENT/);
  });

  it('leaves a directory that a restore claimed after its removal was asked, while its earlier user was on its way out', async () => {
    const dir = createRankInitDir('t', 4);
    const p = spawn('sleep', ['30'], { cwd: dir, stdio: 'ignore' });
    await until('sleep to run', () => p.pid !== undefined);
    removeRankInitDir(dir); // in use: looked at again every 250 ms
    await new Promise((r) => setTimeout(r, 20));
    ensureRankInitDir(dir); // a copy of the rank is restored into it (here or on another host of this machine)
    p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 800)); // the next looks find it unused: it stays all the same
    expect(existsSync(dir)).toBe(true);
  });
});

describe('sweeping rank init directories', () => {
  it('removes the old unused ones only: not a fresh one, not one in use, not a non-empty one, nothing outside the root', async () => {
    expect(sweepRankInitDirs(0)).toBe(0); // no root yet
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    const old = (name: string): string => {
      const d = join(root, name);
      mkdirSync(d, { recursive: true });
      utimesSync(d, hourAgo, hourAgo);
      return d;
    };
    const stale = old('a.0.111');
    writeAgentSocketFile(stale, 'ferry-agent'); // (its own file does not keep it)
    utimesSync(stale, hourAgo, hourAgo);
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
  });
});
