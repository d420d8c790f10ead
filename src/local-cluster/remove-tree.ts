// Removes a test cluster's temp dir, also when something is mounted in it (a
// test that puts a host's images on a small tmpfs): what is mounted under it
// is unmounted first (lazily, so a process still inside does not block it),
// or the removal would fail on the mount point, and the mount would outlive
// the run.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { sep } from 'node:path';

/** Mount points at or under `dir`, deepest first (from /proc/self/mounts; octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  let table = '';
  try {
    table = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return table
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(dir + sep))
    .sort((a, b) => b.length - a.length);
}

export function removeTree(dir: string): void {
  for (const m of mountsUnder(dir)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // not ours to unmount, or gone: the removal below says what is left
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
