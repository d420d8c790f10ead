// How Ferry spawns a provisioned CRIU (criu-launch.ts): its loader directly,
// with the arguments its wrapper would give, and only for a wrapper Ferry
// wrote. And, with the real CRIU spawned that way, a dump runs in a process
// group of its own, and the command line an agent killed mid-dump leaves
// behind is still found (orphan-dumps.ts).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { criuArgv } from '../../src/criu/criu-launch.js';
import { dumpRank } from '../../src/criu/criu-dump.js';
import { findOrphanDumps } from '../../src/agent/orphan-dumps.js';
import { parentOf, waitFor } from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 120_000;

let criu: CriuInstall;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  criu = await ensureCriu();
  dir = mkdtempSync(join(tmpdir(), 'ferry-criu-launch-'));
}, 10 * 60_000);

afterAll(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The process group of `pid` (field 5 of /proc/PID/stat, after the command in parentheses). */
const processGroupOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);

const version = (argv: readonly string[]): string => {
  const r = spawnSync(argv[0]!, [...argv.slice(1), '--version'], { encoding: 'utf8' });
  return `${r.status} ${r.stdout}`;
};

describe('a provisioned CRIU', () => {
  it('is spawned through its loader, as its wrapper would run it, and only a wrapper Ferry wrote is read that way', (ctx) => {
    if (criu.source !== 'cache') ctx.skip(); // a CRIU of the system's (FERRY_CRIU, PATH) runs as it is
    const argv = criuArgv(criu.command);
    expect(basename(argv[0]!)).toMatch(/^ld-linux/);
    expect(argv.slice(1, 2)).toEqual(['--library-path']);
    expect(argv[3]).toBe(join(dirname(dirname(criu.command)), 'prefix', 'usr', 'sbin', 'criu'));
    expect(version(argv)).toBe(version([criu.command]));
    expect(version(argv)).toMatch(/^0 Version: /);

    // The same wrapper in another folder next to the same prefix: run from there.
    const moved = join(dir, 'moved');
    mkdirSync(join(moved, 'bin'), { recursive: true });
    symlinkSync(join(dirname(dirname(criu.command)), 'prefix'), join(moved, 'prefix'));
    copyFileSync(criu.command, join(moved, 'bin', 'criu'));
    expect(criuArgv(join(moved, 'bin', 'criu'))[3]).toBe(join(moved, 'prefix', 'usr', 'sbin', 'criu'));

    // A wrapper someone changed may do more than the loader would: it is run as it is.
    const edited = join(dir, 'edited');
    mkdirSync(join(edited, 'bin'), { recursive: true });
    symlinkSync(join(dirname(dirname(criu.command)), 'prefix'), join(edited, 'prefix'));
    writeFileSync(join(edited, 'bin', 'criu'), readFileSync(criu.command, 'utf8').replace('#!/bin/sh\n', '#!/bin/sh\nexport CRIU_EXTRA=1\n'));
    chmodSync(join(edited, 'bin', 'criu'), 0o755);
    expect(criuArgv(join(edited, 'bin', 'criu'))).toEqual([join(edited, 'bin', 'criu')]);
    expect(criuArgv('/nonexistent/bin/criu')).toEqual(['/nonexistent/bin/criu']);
  });

  it('dumping, spawned as an agent spawns it, is found by its command line while it runs (what a killed agent leaves behind)', async () => {
    const cwd = join(dir, 'victim');
    mkdirSync(cwd, { recursive: true });
    const victim = spawn('sleep', ['600'], { cwd, stdio: 'ignore', detached: true });
    children.push(victim);
    // CRIU waits in its pre-dump action until told to go on: the dump stays under way while it is looked for.
    const release = join(dir, 'release');
    const hold = join(dir, 'hold-dump.sh');
    writeFileSync(hold, `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = pre-dump ] || exit 0\nn=0\nwhile [ ! -e ${release} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\n`);
    chmodSync(hold, 0o755);
    const images = join(dir, 'images');
    const rankDir = join(images, 'job', '7', 'rank-0');
    const dump = dumpRank({ criu, initPid: victim.pid!, imagesDir: rankDir, leaveRunning: true, cwdIsPrivate: () => true, actionScript: hold });
    try {
      const found = await waitFor('the running dump among the orphan dumps', () => {
        const f = findOrphanDumps(images);
        return f.length > 0 && f;
      });
      // CRIU itself, this process's child, and any helper CRIU forked (the same command line).
      expect([...new Set(found.map((d) => d.setDir))]).toEqual([join(images, 'job', '7')]);
      const criuPid = found.find((d) => parentOf(d.pid) === process.pid)?.pid;
      expect(criuPid).toBeDefined();
      // ... in a process group of its own, which a signal to the agent's group (Ctrl-C at its terminal) misses.
      expect(processGroupOf(criuPid!)).toBe(criuPid);
      expect(processGroupOf(criuPid!)).not.toBe(processGroupOf(process.pid));
      expect(findOrphanDumps(join(dir, 'other-images'))).toEqual([]);
    } finally {
      writeFileSync(release, '');
      await dump.catch(() => undefined);
    }
    const done = await dump;
    expect(done.totalBytes).toBeGreaterThan(0);
    expect(findOrphanDumps(images)).toEqual([]);
  }, TEST_TIMEOUT_MS);
});
