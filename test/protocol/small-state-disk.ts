// The coordinator's state directory on a disk of its own that a test fills up: a real 4 MiB tmpfs under
// the real SQLite catalog (mounted before the coordinator starts, unmounted after it stopped).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export class SmallStateDisk {
  constructor(private readonly dir: string) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'ferry-test-state', dir]);
  }

  /** Fills the disk to the last byte. */
  fill(): void {
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${this.filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // (dd ends with ENOSPC)
    }
  }

  /** Makes room again. */
  free(): void {
    rmSync(this.filler);
  }

  unmount(): void {
    execFileSync('umount', [this.dir]);
  }

  private get filler(): string {
    return join(this.dir, 'filler');
  }
}
