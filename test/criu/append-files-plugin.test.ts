// Ferry's CRIU plugin (src/native/ferry-append-files.c), loaded by real CRIU
// for a rank's dump: it records, while the tree is frozen, the size of every
// regular file a task of the tree has open write-only with O_APPEND, and
// nothing else. A CRIU that cannot load it still dumps, without the record.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { APPEND_FILES_NAME, appendFilesPlugin, dumpRank } from '../../src/criu/criu-dump.js';
import { readAppendedFiles } from '../../src/criu/written-files.js';
import { waitFor } from './criu-rank-fixture.js';

let criu: CriuInstall;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  criu = await ensureCriu();
  dir = mkdtempSync(join(tmpdir(), 'ferry-append-plugin-'));
}, 10 * 60_000);

afterAll(() => {
  for (const c of children.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL'); // the shell and the child it forked
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A shell (its own session, the dump's root) holding: an append-only log it
 * wrote 2 bytes to, a file open write-only without O_APPEND, one open for
 * reading and writing, an append-only file it deleted, and /dev/null open for
 * append; and a child holding an append-only log of its own with 3 bytes.
 */
async function startTree(cwd: string): Promise<ChildProcess> {
  mkdirSync(cwd, { recursive: true });
  const script = [
    'exec 3>>a.log 4>w.log 5<>rw.log 7>>gone.log 8>>/dev/null',
    'printf x >&3; printf "\\n" >&3; printf data >&4; rm gone.log',
    '(exec 9>>child.log; printf yy >&9; printf "\\n" >&9; touch child.ready; exec sleep 600) &',
    'touch root.ready',
    'exec sleep 600',
  ].join('\n');
  const tree = spawn('bash', ['-c', script], { cwd, stdio: 'ignore', detached: true });
  children.push(tree);
  await waitFor('the tree to open its files', () => existsSync(join(cwd, 'root.ready')) && existsSync(join(cwd, 'child.ready')));
  await waitFor('the root to be sleep', () => readFileSync(`/proc/${tree.pid}/comm`, 'utf8').trim() === 'sleep');
  return tree;
}

describe("Ferry's CRIU plugin", () => {
  it('records the size of each append-only file of every task of the frozen tree, and only those', async () => {
    const cwd = join(dir, 'tree');
    const tree = await startTree(cwd);
    const images = join(dir, 'images');
    const r = await dumpRank({ criu, initPid: tree.pid!, imagesDir: images, leaveRunning: true, cwdIsPrivate: () => true });
    expect(r.files.map((f) => f.name)).toContain(APPEND_FILES_NAME);
    const recorded = (await readAppendedFiles(images)).map((f) => `${f.sizeBytes} ${f.path}`).sort();
    // One line per descriptor: the child inherited a.log's.
    expect(recorded).toEqual([`2 ${join(cwd, 'a.log')}`, `2 ${join(cwd, 'a.log')}`, `3 ${join(cwd, 'child.log')}`]);
    expect(statSync(join(cwd, 'a.log')).size).toBe(2);
    expect(readFileSync(join(images, 'dump.log'), 'utf8')).toMatch(/ferry-append-files: 3 append-only file\(s\) of 2 task\(s\) recorded/);

    // Asked for none (the benchmark's plain dump): no plugin, no record.
    const plain = join(dir, 'images-plain');
    const p = await dumpRank({ criu, initPid: tree.pid!, imagesDir: plain, leaveRunning: true, cwdIsPrivate: () => true, recordAppendFiles: false });
    expect(p.files.map((f) => f.name)).not.toContain(APPEND_FILES_NAME);
    expect(readFileSync(join(plain, 'dump.log'), 'utf8')).not.toMatch(/ferry-append-files/);
  });

  it('a CRIU that cannot load it dumps all the same, without the record, and later dumps do not try again', async () => {
    const cwd = join(dir, 'tree-2');
    const tree = await startTree(cwd);
    const broken = join(dir, 'broken-plugins');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'ferry-append-files.so'), 'not an ELF file\n');
    expect(appendFilesPlugin(criu.command, broken)).toEqual({ ok: true }); // there, and not refused yet

    const first = join(dir, 'images-broken-1');
    const r = await dumpRank({ criu, initPid: tree.pid!, imagesDir: first, leaveRunning: true, cwdIsPrivate: () => true, criuPluginDir: broken });
    expect(r.files.map((f) => f.name)).not.toContain(APPEND_FILES_NAME);
    expect(r.files.map((f) => f.name)).toContain('inventory.img');
    expect(appendFilesPlugin(criu.command, broken)).toEqual({ ok: false, why: expect.stringMatching(/Unable to load .*broken-plugins\/ferry-append-files\.so/) });
    // The log is the second run's: it went without the plugin.
    expect(readFileSync(join(first, 'dump.log'), 'utf8')).not.toMatch(/broken-plugins/);

    const second = join(dir, 'images-broken-2');
    const again = await dumpRank({ criu, initPid: tree.pid!, imagesDir: second, leaveRunning: true, cwdIsPrivate: () => true, criuPluginDir: broken });
    expect(again.files.map((f) => f.name)).not.toContain(APPEND_FILES_NAME);
    expect(readFileSync(join(second, 'dump.log'), 'utf8')).not.toMatch(/broken-plugins/);
    // The tree ran on through all of it.
    expect(readFileSync(`/proc/${tree.pid}/comm`, 'utf8').trim()).toBe('sleep');
  });
});
