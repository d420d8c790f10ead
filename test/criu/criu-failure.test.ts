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
    // Or cut off in its error line ("pag...", what CRIU 4.2 left in a CI run): the disk is named all the same.
    const cut = log('cut-in-error.log', [...quiet, '(00.171602) Error (criu/page-xfer.c:1): pag']);
    expect(await describeCriuFailure('criu dump of pid 6 failed (exit code 1)', cut, fullDisk)).toBe(
      `no space left on device: criu dump of pid 6 failed (exit code 1): pag; No space left on device on the disk of ${fullDisk} (0 bytes free), ` +
        `and CRIU's log stops short of its error (CRIU's log: ${cut})`,
    );
    expect(await describeCriuFailure('criu dump of pid 6 failed (exit code 1)', cut, dir)).toBe(`criu dump of pid 6 failed (exit code 1): pag (CRIU's log: ${cut})`);
  });

  it("names a rank's own TCP connection or outside Unix socket, which CRIU refuses, instead of CRIU's options", async () => {
    // Excerpts of real CRIU 4.1 dump logs (-v4) of a process under ferry-init holding such a socket.
    const tcp = log('tcp.log', [
      '(00.048315) inet: \tCollected: ino 0x984040 family AF_INET    type SOCK_STREAM    port    39265 state TCP_LISTEN       src_addr 127.0.0.1',
      '(00.048331) inet: \tCollected: ino 0x983fe9 family AF_INET    type SOCK_STREAM    port    45562 state TCP_ESTABLISHED  src_addr 127.0.0.1',
      '(00.050301) Dumping task (pid: 31747 comm: ferry-init)',
      '(00.072184) Dumping task (pid: 31748 comm: python3)',
      '(00.078240) 31748 fdinfo 2: pos:                0 flags:           102001/0',
      '(00.078257) 31748 fdinfo 3: pos:                0 flags:                2/0x1',
      '(00.078266) sockets: Searching for socket 0x983fe9 family 2',
      '(00.078269) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.',
      '(00.078806) Error (criu/cr-dump.c:2111): Dumping FAILED.',
    ]);
    expect(await describeCriuFailure('criu dump of pid 31747 failed (exit code 1)', tcp)).toBe(
      "criu dump of pid 31747 failed (exit code 1): the rank's process python3 has, on fd 3, a TCP connection of its own (from 127.0.0.1:45562), " +
        "which CRIU cannot dump: Ferry's MPI runtime closes its own connections before a dump, not the program's; close it before checkpoints, " +
        `or do not checkpoint this job (CRIU: inet: Connected TCP socket, consider using --tcp-established option.; Dumping FAILED.; its log: ${tcp})`,
    );
    const unix = log('unix.log', [
      '(00.062805) Dumping task (pid: 31841 comm: python3)',
      '(00.068169) unix: Dumping unix socket at 3',
      '(00.068171) unix: \tDumping: ino 9978326 peer_ino 9979061 family    1 type    1 state  1 name null',
      '(00.075815) Dumping task (pid: 31842 comm: helper)',
      '(00.075970) unix: Dumping external sockets',
      '(00.075984) unix: \tRunaway socket: ino 9979061 peer_ino 9978326 family    1 type    1 state  1 name /run/license.sock',
      '(00.075985) Error (criu/sk-unix.c:874): unix: External socket is used. Consider using --ext-unix-sk option.',
    ]);
    // The process and descriptor are those that hold the rank's end (python3, fd 3), not the last one dumped.
    expect(await describeCriuFailure('dump failed', unix)).toMatch(
      /^dump failed: the rank's process python3 has, on fd 3, a Unix socket connected to \/run\/license\.sock \(outside the rank\), which CRIU cannot dump: /,
    );
  });
});
