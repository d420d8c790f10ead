// process.exit() drops what Node still holds for stdout and stderr: when they
// are pipes (`ferry run ... | tee log`, a launcher reading rank-exec), writes
// that the pipe could not take yet wait in memory, and an exit straight after
// the job ended lost them, with status 0: `ferry run ... | (sleep 12; cat)`
// got 64 KiB of a job's 90 MB. A command's end waits for them first.
import type { Writable } from 'node:stream';

/** Resolves once everything written to stdout and stderr so far has gone to the file, pipe or terminal. */
export async function flushStdio(): Promise<void> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
}

function flushed(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  // An empty write's callback comes after the writes before it (an error, EPIPE, is handled in stdout-closed.ts).
  return new Promise((resolve) => stream.write('', () => resolve()));
}
