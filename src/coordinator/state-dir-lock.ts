// One coordinator per state dir: two writing the same catalog would each
// believe it is the truth. The lock is a pid file; a stale one (its process is
// gone) is taken over.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';

export const LOCK_FILE_NAME = 'coordinator.pid';

export class StateDirLock {
  private constructor(private readonly file: string) {}

  static acquire(stateDir: string): StateDirLock {
    const file = join(stateDir, LOCK_FILE_NAME);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
        return new StateDirLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new FerryError(ErrorCode.BUSY, `state dir ${stateDir} is in use by another coordinator (pid ${holder})`);
      }
      rmSync(file, { force: true }); // stale: its coordinator is gone
    }
    throw new FerryError(ErrorCode.BUSY, `cannot lock state dir ${stateDir}`);
  }

  release(): void {
    rmSync(this.file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
