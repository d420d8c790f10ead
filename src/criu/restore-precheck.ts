// Before a restore: does this host have every file the image needs (the
// executable, libraries, open files, working directory) with the size CRIU
// will check? CRIU itself would fail half way with a line in its log; this
// names every missing or changed file and the host at once.
import { stat } from 'node:fs/promises';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { type ImageSummary, openedForWrite, outputFiles } from './criu-images.js';

export interface RestoreProblem {
  host: string;
  path: string;
  kind: 'missing' | 'size' | 'unreadable';
  /** "HOST: PATH: missing", "HOST: PATH: size 1234 != 5678 expected". */
  message: string;
}

export interface CheckRestorableOptions {
  /** Paths the restore replaces (default: the rank's stdout/stderr files, see outputFiles). */
  remapped?: readonly string[];
}

export async function checkRestorable(
  summary: ImageSummary,
  host: string,
  options: CheckRestorableOptions = {},
): Promise<RestoreProblem[]> {
  const remapped = new Set(options.remapped ?? [...outputFiles(summary).out, ...outputFiles(summary).err]);
  const problems: RestoreProblem[] = [];
  const checked = new Set<string>();
  for (const f of summary.files) {
    // A file deleted before the dump travels in the image (CRIU's ghost file): whatever
    // is at its path now (a rebuilt executable, say) is another file, not needed.
    if (f.ghost || remapped.has(f.path) || checked.has(f.path)) continue;
    checked.add(f.path);
    const problem = (kind: RestoreProblem['kind'], what: string) =>
      problems.push({ host, path: f.path, kind, message: `${host}: ${f.path}: ${what}` });
    let size: number;
    try {
      size = (await stat(f.path)).size;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') problem('missing', 'missing');
      else problem('unreadable', `cannot stat: ${code ?? String(e)}`);
      continue;
    }
    // CRIU records (and checks) a size only for files it validates; it skips
    // files open write-only for append, whose growth is expected.
    if (f.sizeBytes !== undefined && size !== f.sizeBytes) {
      // A file the rank wrote that is shorter now: cut back by a restart from an older epoch, or truncated.
      const why = size < f.sizeBytes && openedForWrite(f) ? ` (the rank had written ${f.sizeBytes} bytes by its dump; the rest is gone from the file)` : '';
      problem('size', `size ${size} != ${f.sizeBytes} expected${why}`);
    }
  }
  return problems;
}

/** Throws one error listing every problem, or returns when the host can restore the image. */
export async function assertRestorable(summary: ImageSummary, host: string, options: CheckRestorableOptions = {}): Promise<void> {
  const problems = await checkRestorable(summary, host, options);
  if (problems.length > 0) {
    throw new FerryError(
      ErrorCode.RESTORE_PRECHECK_FAILED,
      `cannot restore ${summary.dir} on ${host}: ${problems.map((p) => p.message).join('; ')}`,
    );
  }
}
