// What rank 0 of a job reads as its standard input, for `ferry run` and
// `ferry rank-exec`: read whole before the job starts, and sent with it
// (src/agent/rank-stdin.ts keeps it with rank 0 across checkpoints and moves).
import { fstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { MAX_STDIN_BYTES } from '../coordinator/coordinator-config.js';
import { formatBytes } from './format-bytes.js';

/**
 * Rank 0's standard input, read whole before the job starts (as mpiexec gives
 * rank 0 its own): `--stdin FILE`, `--stdin -` (this process's standard input,
 * to its end), else this process's standard input when it is a regular file
 * (`ferry run ... < FILE`). Not a terminal or a pipe without `--stdin -`:
 * reading one to its end could wait forever. `--stdin none`: nothing.
 */
export function rank0Stdin(cmd: string, option: string | undefined, fd = 0): Uint8Array {
  const tooLarge = (bytes: number, what: string) =>
    new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: ${what} is ${bytes} bytes, more than rank 0 can be given (${formatBytes(MAX_STDIN_BYTES)}): give the program the file to read instead`);
  if (option === 'none') return new Uint8Array(0);
  if (option !== undefined && option !== '-') {
    const size = statSync(option, { throwIfNoEntry: false });
    if (!size?.isFile()) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --stdin ${option}: no such file`);
    if (size.size > MAX_STDIN_BYTES) throw tooLarge(size.size, `--stdin ${option}`);
    return readFileSync(option);
  }
  let st: Stats | undefined;
  try {
    st = fstatSync(fd);
  } catch {
    st = undefined; // (closed)
  }
  if (option === undefined && !st?.isFile()) return new Uint8Array(0);
  if (st?.isFile() && st.size > MAX_STDIN_BYTES) throw tooLarge(st.size, 'its standard input');
  const bytes = readFileSync(fd);
  if (bytes.length > MAX_STDIN_BYTES) throw tooLarge(bytes.length, 'its standard input');
  return bytes;
}
