// Rank 0's standard input (`ferry run < FILE`, `--stdin`), as mpiexec gives
// it: all of it comes with the job (SubmitJobRequest.stdin), and the agent
// that starts rank 0 keeps it as a read-only file in the rank's init
// directory, open as fd 0 of ferry-init and of the program.
//
// A pipe from the agent could not be dumped and restored on another host. A
// regular file can: CRIU reopens it by path at restore, checks its size and
// sets the offset the rank had read to. So the file travels with the rank's
// images: DUMP copies it into the image directory (IMAGE_STDIN_FILE, in the
// manifest like CRIU's own files, so FETCH verifies it), and RESTORE puts it
// back at its path before CRIU runs, on whichever host that is. Every other
// rank reads /dev/null.
import { constants as fsConstants, existsSync, statSync, writeFileSync } from 'node:fs';
import { chmod, copyFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ImageSummary } from '../criu/criu-images.js';
import { STDIN_FILE, isRankInitDir } from './rank-init-dir.js';
/** In a rank's image directory: the copy of STDIN_FILE the rank had open at the dump. */
export const IMAGE_STDIN_FILE = 'ferry-stdin';

/** Writes `bytes` as the rank's standard input in `initDir` (read-only); its path. */
export function writeStdinFile(initDir: string, bytes: Uint8Array): string {
  const path = join(initDir, STDIN_FILE);
  writeFileSync(path, bytes, { mode: 0o400, flag: 'wx' });
  return path;
}

/** DUMP, once CRIU is done: the rank's standard input file, if it has one, goes with its images. */
export async function keepStdinWithImage(initDir: string | undefined, imageDir: string): Promise<boolean> {
  if (!initDir) return false;
  const path = join(initDir, STDIN_FILE);
  if (!existsSync(path)) return false;
  await copyFile(path, join(imageDir, IMAGE_STDIN_FILE), fsConstants.COPYFILE_FICLONE);
  return true;
}

/**
 * RESTORE, before CRIU runs: the standard input file the image holds open,
 * put back at its path from the image's copy (left alone when it is there
 * already with its size, as on the host that dumped it). Without a copy in
 * the image nothing is done, and the precheck names the missing file.
 */
export async function placeStdinForRestore(summary: ImageSummary, imageDir: string): Promise<void> {
  const copy = join(imageDir, IMAGE_STDIN_FILE);
  if (!existsSync(copy)) return;
  for (const f of summary.files) {
    if (basename(f.path) !== STDIN_FILE || !isRankInitDir(dirname(f.path)) || f.ghost) continue;
    const there = statSync(f.path, { throwIfNoEntry: false });
    if (there?.isFile() && there.size === statSync(copy).size) continue;
    await copyFile(copy, f.path);
    await chmod(f.path, 0o400);
  }
}
