// A dump started ahead of time (src/criu/warm-dump.ts) with real CRIU: it
// probes the kernel and waits in Ferry's plugin before it seizes the tree;
// the go moves its folder into place and dumps; calling it off, or a CRIU
// that died while it waited, leaves the tree untouched. A dump, warm or cold,
// asked to leave the tree stopped (a migration's) stops all of it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { APPEND_FILES_NAME, DUMP_LOG_NAME, dumpRank } from '../../src/criu/criu-dump.js';
import { readAppendedFiles } from '../../src/criu/written-files.js';
import { WarmDump } from '../../src/criu/warm-dump.js';
import { waitFor } from './criu-rank-fixture.js';

let criu: CriuInstall;
let dir: string;
const children: ChildProcess[] = [];
const warms: WarmDump[] = [];

beforeAll(async () => {
  criu = await ensureCriu();
  dir = mkdtempSync(join(tmpdir(), 'ferry-warm-dump-'));
}, 10 * 60_000);

afterAll(async () => {
  await Promise.all(warms.map((w) => w.cancel()));
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process (its own session) in a directory of its own, with a log open for append. */
async function startVictim(name: string): Promise<{ pid: number; cwd: string; log: string }> {
  const cwd = join(dir, name);
  mkdirSync(cwd, { recursive: true });
  const log = join(cwd, 'app.log');
  writeFileSync(log, 'line\n');
  const fd = openSync(log, 'a');
  const victim = spawn('sleep', ['600'], { cwd, stdio: ['ignore', fd, 'ignore'], detached: true });
  children.push(victim);
  await waitFor('the victim to be sleep', () => readFileSync(`/proc/${victim.pid}/comm`, 'utf8').trim() === 'sleep');
  return { pid: victim.pid!, cwd, log };
}

/** "S" sleeping, "t" stopped by a tracer (CRIU seized it), ... */
const stateOf = (pid: number): string => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;

async function warmUp(pid: number, cwd: string, name: string): Promise<{ warm: WarmDump; staging: string }> {
  const staging = join(dir, 'staging', name);
  const warm = await WarmDump.start({ criu, initPid: pid, stagingDir: staging, cwdIsPrivate: (c) => c === cwd });
  expect(warm).toBeDefined();
  warms.push(warm!);
  // It has probed the kernel and waits, the tree untouched.
  const log = join(staging, DUMP_LOG_NAME);
  await waitFor('CRIU to wait for the go', () => existsSync(log) && /waiting for the go/.test(readFileSync(log, 'utf8')));
  expect(warm!.waiting).toBe(true);
  expect(stateOf(pid)).toBe('S');
  return { warm: warm!, staging };
}

describe('a warm dump', () => {
  it('probes the kernel before it waits; the go moves its folder into place and dumps there, the tree running on', async () => {
    const v = await startVictim('go');
    const { warm, staging } = await warmUp(v.pid, v.cwd, 'go');
    const images = join(dir, 'images', 'job', '1', 'rank-0');
    mkdirSync(join(dir, 'images', 'job', '1'), { recursive: true });
    let movedSeen = false;
    const r = await warm.go(images, undefined, () => {
      movedSeen = existsSync(images) && !existsSync(staging);
    });
    expect(movedSeen).toBe(true);
    expect(r).toBeDefined();
    expect(r!.imagesDir).toBe(images);
    expect(r!.files.map((f) => f.name)).toEqual(expect.arrayContaining(['inventory.img', 'pstree.img', APPEND_FILES_NAME]));
    // The plugin wrote its record through CRIU's descriptor of the folder, wherever it is now.
    expect(await readAppendedFiles(images)).toEqual([{ sizeBytes: 5, path: v.log }]);
    expect(existsSync(staging)).toBe(false);
    expect(warm.waiting).toBe(false);
    expect(stateOf(v.pid)).toBe('S');
    // In the log: the kernel probe, then the wait, then the go and the dump.
    const log = readFileSync(join(images, DUMP_LOG_NAME), 'utf8').split('\n');
    const at = (re: RegExp) => log.findIndex((l) => re.test(l));
    expect(at(/kdat/)).toBeGreaterThanOrEqual(0);
    expect(at(/kdat/)).toBeLessThan(at(/waiting for the go/));
    expect(at(/waiting for the go/)).toBeLessThan(at(/ferry-append-files: go$/));
    expect(at(/ferry-append-files: go$/)).toBeLessThan(at(/Seizing|Dumping task/));
    expect(at(/Dumping finished successfully/)).toBeGreaterThan(at(/Dumping task/));
  });

  it('called off, stops before it touches the tree and leaves no folder', async () => {
    const v = await startVictim('off');
    const { warm, staging } = await warmUp(v.pid, v.cwd, 'off');
    const ended = await warm.cancel();
    expect(ended.code).toBe(1); // the plugin's init failed it: a dump that went on would end with 0
    expect(warm.waiting).toBe(false);
    await waitFor('the staging folder to go', () => !existsSync(staging));
    expect(stateOf(v.pid)).toBe('S');
    // A warm dump called off does not go: the caller dumps the usual way.
    expect(await warm.go(join(dir, 'images-off'))).toBeUndefined();
    expect(existsSync(join(dir, 'images-off'))).toBe(false);
  });

  it('whose CRIU died while it waited does not go: the caller dumps the usual way', async () => {
    const v = await startVictim('died');
    const { warm } = await warmUp(v.pid, v.cwd, 'died');
    const criuPid = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .find((p) => {
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return argv.includes('dump') && argv.includes(String(v.pid)) && argv.some((a) => a.endsWith(join('staging', 'died')));
        } catch {
          return false;
        }
      });
    expect(criuPid).toBeDefined();
    process.kill(Number(criuPid), 'SIGKILL');
    await waitFor('CRIU to be gone', () => !warm.waiting);
    const images = join(dir, 'images-died');
    expect(await warm.go(images)).toBeUndefined();
    expect(existsSync(images)).toBe(false);
    expect(stateOf(v.pid)).toBe('S');
  });

  it('is not had for a tree whose working directory is not its own', async () => {
    const v = await startVictim('shared');
    const warm = await WarmDump.start({ criu, initPid: v.pid, stagingDir: join(dir, 'staging', 'shared'), cwdIsPrivate: () => false });
    expect(warm).toBeUndefined();
    expect(existsSync(join(dir, 'staging', 'shared'))).toBe(false);
  });
});

/** A tree of two processes (a shell and its sleeping child) in a directory of its own. */
async function startTree(name: string): Promise<{ pid: number; child: number; cwd: string }> {
  const cwd = join(dir, name);
  mkdirSync(cwd, { recursive: true });
  const tree = spawn('sh', ['-c', 'sleep 600 & wait'], { cwd, stdio: 'ignore', detached: true });
  children.push(tree);
  let child = 0;
  await waitFor('the shell to have its child', () => {
    child = Number(readFileSync(`/proc/${tree.pid}/task/${tree.pid}/children`, 'utf8').trim().split(/\s+/)[0] || 0);
    return child > 0 && readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'sleep';
  });
  return { pid: tree.pid!, child, cwd };
}

describe('a dump that leaves the tree stopped', () => {
  it.each(['warm', 'cold'])('%s: every process of the tree is stopped after it, and SIGCONT continues them', async (how) => {
    const t = await startTree(`stopped-${how}`);
    const images = join(dir, 'images-stopped', how);
    if (how === 'warm') {
      const { warm } = await warmUp(t.pid, t.cwd, `stopped-${how}`);
      mkdirSync(join(dir, 'images-stopped'), { recursive: true });
      expect(await warm.go(images, undefined, undefined, true)).toBeDefined();
      expect(readFileSync(join(images, DUMP_LOG_NAME), 'utf8')).toMatch(/ferry-append-files: 2 of 2 task\(s\) left stopped/);
    } else {
      await dumpRank({ criu, initPid: t.pid, imagesDir: images, leaveRunning: true, leaveStopped: true, cwdIsPrivate: (c) => c === t.cwd });
    }
    // (CRIU lets the tree go as it exits: the stop lands then)
    await waitFor('the tree to be stopped', () => stateOf(t.pid) === 'T' && stateOf(t.child) === 'T');
    process.kill(t.pid, 'SIGCONT');
    process.kill(t.child, 'SIGCONT');
    await waitFor('the tree to run on', () => stateOf(t.pid) === 'S' && stateOf(t.child) === 'S');
  });
});
