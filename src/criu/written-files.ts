// A restart from an epoch rolls back the files the ranks were writing.
//
// CRIU records the size of every regular file a process has open (all but
// write-only O_APPEND ones, such as the rank's logs) and refuses to restore
// when the file's size differs. A rank that wrote its own output file (a
// history, a results stream) on after the epoch left that file longer than
// the image expects, and the restart would fail on it. Cut back to the size
// at the dump, the file is what the rank had written by the epoch; the
// restored rank goes on writing from its offset there, so a rank that writes
// its files front to back ends with the same files as a run never rolled back.
//
// Only files the rank had open for writing, and only when they grew: a file
// that shrank, or one opened read-only that changed, is not the rank's to
// fix; the restore precheck names it (restore-precheck.ts).
import { stat, truncate } from 'node:fs/promises';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { type ImageFile, type ImageSummary, openedForWrite, outputFiles } from './criu-images.js';

export interface CutBackFile {
  path: string;
  /** Its size before the cut. */
  fromBytes: number;
  /** Its size at the dump: what CRIU recorded and checks. */
  toBytes: number;
}

/** Open for writing through a descriptor, with a size CRIU checks (not the rank's remapped stdout/stderr). */
function writtenWithCheckedSize(f: ImageFile, remapped: ReadonlySet<string>): f is ImageFile & { sizeBytes: number } {
  return f.sizeBytes !== undefined && openedForWrite(f) && f.uses.includes('fd') && !f.uses.includes('exe') && !remapped.has(f.path);
}

/**
 * Cuts back each file the image's processes had open for writing that is
 * longer now than when they were dumped. Returns what it cut; a file it cannot
 * cut fails the restore, naming the file.
 */
export async function cutBackWrittenFiles(summary: ImageSummary): Promise<CutBackFile[]> {
  const { out, err } = outputFiles(summary);
  const remapped = new Set([...out, ...err]);
  // One size per path (several descriptors on one file record the same one): the largest, so no descriptor's data is cut.
  const sizes = new Map<string, number>();
  for (const f of summary.files) {
    if (writtenWithCheckedSize(f, remapped)) sizes.set(f.path, Math.max(f.sizeBytes, sizes.get(f.path) ?? 0));
  }
  const cut: CutBackFile[] = [];
  for (const [path, toBytes] of sizes) {
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile() || st.size <= toBytes) continue; // missing or short: the precheck says so
    try {
      await truncate(path, toBytes);
    } catch (e) {
      throw new FerryError(ErrorCode.RESTORE_PRECHECK_FAILED, `${path}: grew from ${toBytes} to ${st.size} bytes since the dump, and cannot be cut back: ${errorMessage(e)}`);
    }
    cut.push({ path, fromBytes: st.size, toBytes });
  }
  return cut;
}
