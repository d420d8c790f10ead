// The identity of an image store: the directory an agent's --images names.
// Agents whose images directories are one shared directory (NFS, Lustre) read
// the same IMAGES/.ferry-store-id and so report the same id when they
// register; the coordinator then knows that an image written by one of them
// can be read in place by any other, also when its writer is down.
//
// The file is one line, "ferry-image-store VERSION ID\n" (ID: 32 hex digits,
// random). It is created once, by whichever agent comes first: written under
// a temp name, fsynced, then published with link(2), which fails with EEXIST
// when another agent published first (link is atomic on NFS too, unlike
// O_EXCL on older clients); the loser removes its temp file and adopts the
// winner's id. A copy of the directory (rsync, cp -a) carries the id along and
// would pass for the same store: give a copy its own id by removing the file.
import { randomBytes } from 'node:crypto';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { fsyncDir } from './file-durability.js';
import { IMAGE_CORRUPT, IMAGE_IO } from './image-errors.js';

const trace = tracer('images');

export const IMAGE_STORE_ID_FILE = '.ferry-store-id';
const IMAGE_STORE_MAGIC = 'ferry-image-store';
/** Bump when the file's meaning changes; readers refuse newer ones. */
export const IMAGE_STORE_FORMAT_VERSION = 1;
const IMAGE_STORE_ID_BYTES = 16;
const LINE = /^ferry-image-store (\d+) ([0-9a-f]{32})\n$/;

/** The store id of the images root `root`; undefined when it has none yet. */
export async function readImageStoreId(root: string): Promise<string | undefined> {
  const path = join(root, IMAGE_STORE_ID_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError(IMAGE_IO, `cannot read the image store id ${path}: ${errorMessage(err)}`);
  }
  const m = LINE.exec(text);
  if (!m) {
    throw new FerryError(
      IMAGE_CORRUPT,
      `${path} is not a Ferry image store id (expected "${IMAGE_STORE_MAGIC} ${IMAGE_STORE_FORMAT_VERSION} <32 hex digits>"); ` +
        'remove it to give this directory a new id',
    );
  }
  const version = Number(m[1]);
  if (version === 0 || version > IMAGE_STORE_FORMAT_VERSION) {
    throw new FerryError(IMAGE_CORRUPT, `${path}: image store id format version ${version} is not one this Ferry reads (${IMAGE_STORE_FORMAT_VERSION})`);
  }
  return m[2]!;
}

/**
 * The store id of `root`, created when the directory has none. Agents that
 * start at once on a shared directory all return the same id.
 */
export async function ensureImageStoreId(root: string): Promise<string> {
  const existing = await readImageStoreId(root);
  if (existing) return existing;
  const id = randomBytes(IMAGE_STORE_ID_BYTES).toString('hex');
  const tmp = join(root, `${IMAGE_STORE_ID_FILE}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(`${IMAGE_STORE_MAGIC} ${IMAGE_STORE_FORMAT_VERSION} ${id}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, join(root, IMAGE_STORE_ID_FILE));
      await fsyncDir(root);
      trace(`image store ${root}: new id ${id}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another agent published its id first: that one is the store's.
    }
  } catch (err) {
    throw new FerryError(IMAGE_IO, `cannot create the image store id in ${root}: ${errorMessage(err)}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const published = await readImageStoreId(root);
  if (!published) throw new FerryError(IMAGE_IO, `${join(root, IMAGE_STORE_ID_FILE)} vanished right after it was created`);
  return published;
}
