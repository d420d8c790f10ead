// Where a rank's images live under an agent's images root, and the checks that
// keep every name a plain name inside that root (nothing a peer sends may
// reach a path outside it).
import { join, resolve, sep } from 'node:path';
import { FerryError } from '../common/ferry-error.js';
import { IMAGE_BAD_REQUEST } from './image-errors.js';

export const MANIFEST_FILE_NAME = 'manifest.ferry';
/** Suffix of a file being received; its length is the count of verified bytes. */
export const PART_SUFFIX = '.part';

const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@=-]*$/;
const MAX_NAME_CHARS = 255;

/** True for a name that is one path component: no '/', no '..', not absolute, no NUL. */
export function isPlainName(name: string): boolean {
  return name.length <= MAX_NAME_CHARS && PLAIN_NAME.test(name) && name !== '.' && name !== '..';
}

export function requirePlainName(name: string, what: string): void {
  if (!isPlainName(name)) {
    throw new FerryError(IMAGE_BAD_REQUEST, `${what} '${name}' is not a plain name (refusing '..', '/', absolute and empty names)`);
  }
}

/** ROOT/JOB/EPOCH/rank-R, refusing any job id that is not a plain name. */
export function rankImageDir(root: string, jobId: string, epoch: number, rank: number): string {
  requirePlainName(jobId, 'job id');
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new FerryError(IMAGE_BAD_REQUEST, `bad epoch ${epoch}`);
  if (!Number.isSafeInteger(rank) || rank < 0) throw new FerryError(IMAGE_BAD_REQUEST, `bad rank ${rank}`);
  const base = resolve(root);
  const dir = join(base, jobId, String(epoch), `rank-${rank}`);
  if (!dir.startsWith(base + sep)) throw new FerryError(IMAGE_BAD_REQUEST, `${dir} is outside ${base}`);
  return dir;
}

/** "epoch 3 rank 1": how the operator sees which image a problem is in. */
export function imageLabel(m: { epoch: number; rank: number }): string {
  return `epoch ${m.epoch} rank ${m.rank}`;
}
