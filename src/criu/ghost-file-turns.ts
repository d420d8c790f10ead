// Turns for restores that recreate the same ghost file. A file a rank held
// while it was deleted (its executable, rebuilt while the job ran; an
// unlinked scratch file) travels in its image, and CRIU's restore recreates it
// next to its old path as PATH.cr.ID.ghost, opens it, then removes it. The
// ranks of one job share those paths and IDs (every rank's rebuilt executable
// is ghost 1), so two restores at once on one machine fail: one finds the
// other's ghost ("Can't create ghost regfile: File exists"), or removes it
// under it ("Couldn't unlink remap"). Restores take turns per ghost path,
// with a flock(2) in the directory of CRIU's other turn locks (one agent per
// namespace host shares this machine's files). Only restores that recreate
// the same ghost wait; images without ghosts take no lock.
//
// Not covered: hosts of their own that share the directory over NFS take
// turns only among their own restores.
import { createHash } from 'node:crypto';
import { mkdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { procScratchLockDir } from './criu-dump.js';
import { type ImageSummary, ghostPath } from './criu-images.js';
import { acquireFileLock, type FileLock } from './file-lock.js';

const trace = tracer('criu');

export interface GhostFileTurn {
  /** The ghost paths this restore holds the turn for (sorted). */
  readonly paths: readonly string[];
  release(): Promise<void>;
}

function ghostLockPath(ghost: string): string {
  return join(procScratchLockDir(), `ghost-${createHash('sha256').update(ghost).digest('hex').slice(0, 32)}.lock`);
}

/**
 * Waits for the turn of every ghost path the image recreates, in sorted order
 * (two restores never hold one each while waiting for the other's). Under the
 * turn, a ghost found at its path is one a killed restore left: it is removed.
 */
export async function takeGhostFileTurn(summary: ImageSummary, timeoutMs: number): Promise<GhostFileTurn> {
  const paths = [...new Set(summary.files.flatMap((f) => ghostPath(f) ?? []))].sort();
  const locks: FileLock[] = [];
  const release = async () => {
    for (const l of locks.splice(0).reverse()) await l.release();
  };
  if (paths.length === 0) return { paths, release };
  try {
    await mkdir(procScratchLockDir(), { recursive: true });
    for (const p of paths) locks.push(await acquireFileLock(ghostLockPath(p), timeoutMs));
    for (const p of paths) {
      if (!(await stat(p).catch(() => undefined))) continue;
      trace(`removing ${p}, a ghost file left by a restore that was killed`);
      await unlink(p).catch((e) => trace(`cannot remove ${p}: ${errorMessage(e)}`));
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { paths, release };
}
