// A rank image directory shaped like a CRIU dump: a large pages file of random
// data, small files, an empty one. Used by the images tests.
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rankImageDir } from '../../src/images/image-paths.js';

export const BIG_FILE_NAME = 'pages-1.img';
export const BIG_FILE_BYTES = 64 * 1024 * 1024;

export const FIXTURE_META = { jobId: 'job-7', epoch: 3, rank: 1, host: 'host-a', criuVersion: '4.1.1' };

export interface TempDirs {
  make(prefix: string): Promise<string>;
  removeAll(): Promise<void>;
}

export function tempDirs(): TempDirs {
  const made: string[] = [];
  return {
    async make(prefix) {
      const d = await mkdtemp(join(tmpdir(), `ferry-images-${prefix}-`));
      made.push(d);
      return d;
    },
    async removeAll() {
      for (const d of made.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

/** Writes the fixture's files into ROOT/job-7/3/rank-RANK (rank 1 unless given) and returns that directory. */
export async function makeRankImage(root: string, bigBytes = BIG_FILE_BYTES, rank = FIXTURE_META.rank): Promise<string> {
  const dir = rankImageDir(root, FIXTURE_META.jobId, FIXTURE_META.epoch, rank);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, BIG_FILE_NAME), randomBytes(bigBytes));
  await writeFile(join(dir, 'core-1.img'), randomBytes(12_345));
  await writeFile(join(dir, 'mm-1.img'), randomBytes(3 * 1024 * 1024 + 17)); // not a multiple of the chunk size
  await writeFile(join(dir, 'pagemap-1.img'), randomBytes(4096));
  await writeFile(join(dir, 'inventory.img'), Buffer.from('inventory'));
  await writeFile(join(dir, 'empty.img'), Buffer.alloc(0));
  return dir;
}
