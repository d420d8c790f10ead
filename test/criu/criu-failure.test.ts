// What an operator reads when CRIU fails: CRIU's own error messages from its
// log (each once, the harmless ones left out), a full disk named first, the
// log's tail when it has no error line, and where the log is. A dump whose
// images disk filled up before CRIU could log its error (the log lives on that
// disk) is named a full disk too, from a real full tmpfs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeCriuFailure } from '../../src/criu/criu-dump.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-criu-failure-'));
const fullDisk = join(dir, 'full-disk');
afterAll(() => {
  try {
    execFileSync('umount', [fullDisk], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  rmSync(dir, { recursive: true, force: true });
});

function log(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('describeCriuFailure', () => {
  it("gives CRIU's first distinct errors, without the harmless rlimit one, and names the log", async () => {
    const path = log('errors.log', [
      "(00.000100) Error (criu/rlimit.c:12): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
      '(00.100000) Dumping pages (type: 59 pid: 42)',
      "(00.200000) Error (criu/cr-dump.c:1): Can't open /proc/42/map_files: No such file or directory",
      "(00.200001) Error (criu/cr-dump.c:1): Can't open /proc/42/map_files: No such file or directory",
      '(00.300000) Warn  (criu/kerndat.c:1799): Hardware breakpoints do not seem to work',
      '(00.400000) Error (criu/cr-dump.c:2): Dumping FAILED.',
      '(00.400001) Error (criu/cr-dump.c:3): a fourth one',
    ]);
    expect(await describeCriuFailure('criu dump of pid 42 failed (exit code 1)', path)).toBe(
      `criu dump of pid 42 failed (exit code 1): Can't open /proc/42/map_files: No such file or directory; Dumping FAILED.; a fourth one (CRIU's log: ${path})`,
    );
  });

  it('names a full disk first', async () => {
    const path = log('full.log', ['(00.171602) Error (criu/bfd.c:131): bfd: Error flushing image: No space left on device']);
    expect(await describeCriuFailure('criu dump of pid 7 failed (exit code 1)', path)).toMatch(
      /^no space left on device: criu dump of pid 7 failed \(exit code 1\): bfd: Error flushing image: No space left on device \(CRIU's log: /,
    );
  });

  it("gives the log's tail when it has no error line, and says when there is no log", async () => {
    const path = log('quiet.log', ['(00.1) Dumping pages', '(00.2) Killed while waiting']);
    expect(await describeCriuFailure('criu dump of pid 9 timed out', path)).toBe(`criu dump of pid 9 timed out; ${path} ends:\n(00.1) Dumping pages\n(00.2) Killed while waiting`);
    expect(await describeCriuFailure('criu restore failed', join(dir, 'none.log'))).toBe(`criu restore failed (no log at ${join(dir, 'none.log')})`);
  });

  it('names a full disk when CRIU stopped logging because its images disk was full', async () => {
    const quiet = ['(00.151994) Fetched ack: 66 66 0', '(00.151995) PPB: 256 pages 1 segs 256 pipe'];
    const path = log('cut-short.log', quiet);
    mkdirSync(fullDisk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'ferry-test-full-disk', fullDisk]);
    let filled = false;
    try {
      writeFileSync(join(fullDisk, 'pages-1.img'), Buffer.alloc(128 * 1024));
    } catch (e) {
      filled = (e as NodeJS.ErrnoException).code === 'ENOSPC';
    }
    expect(filled).toBe(true);
    expect(await describeCriuFailure('criu dump of pid 5 failed (exit code 1)', path, fullDisk)).toBe(
      `no space left on device: criu dump of pid 5 failed (exit code 1): No space left on device on the disk of ${fullDisk} (0 bytes free), and CRIU's log stops short of its error (CRIU's log: ${path})`,
    );
    // The same quiet log beside images on a disk with room is only a tail.
    expect(await describeCriuFailure('criu dump of pid 5 failed (exit code 1)', path, dir)).toBe(`criu dump of pid 5 failed (exit code 1); ${path} ends:\n${quiet.join('\n')}`);
  });
});
