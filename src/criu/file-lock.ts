import { spawn } from 'node:child_process';
import { FerryError } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';

// An exclusive flock(2) on a file, held by a small `flock ... cat` child for as
// long as the lock is needed. Node has no flock of its own; the child also
// gives the right behaviour for free when this process dies: its stdin closes,
// cat exits and the kernel drops the lock.
export interface FileLock {
  release(): Promise<void>;
}

const LOCKED_MARK = 'locked';

export function acquireFileLock(path: string, timeoutMs: number): Promise<FileLock> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'flock',
      ['--exclusive', '--timeout', String(Math.ceil(timeoutMs / 1000)), path, 'sh', '-c', `echo ${LOCKED_MARK}; exec cat`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    let settled = false;
    const exited = new Promise<void>((res) => child.on('close', () => res()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!settled && out.includes(LOCKED_MARK)) {
        settled = true;
        resolve({
          release: async () => {
            child.stdin.end();
            await exited;
          },
        });
      }
    });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      reject(new FerryError(ErrorCode.UNAVAILABLE, `cannot lock ${path}: ${e.message}`));
    });
    child.on('close', (code) => {
      if (settled) return;
      settled = true;
      reject(new FerryError(ErrorCode.TIMEOUT, `cannot lock ${path}: flock exited ${code}${err ? `: ${err.trim()}` : ''}`));
    });
  });
}
