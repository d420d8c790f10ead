// GrowingFileHasher: page images hashed while they are appended to give the
// sha256 of the whole file; writeManifest takes such digests only while the
// size still matches, and a wrong one is caught by verifyImageDir.
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HASH_READ_BYTES, hashFile } from '../../src/images/file-durability.js';
import { GROWING_HASH_IDLE_MS, GrowingFileHasher } from '../../src/images/growing-file-hasher.js';
import { readManifest, verifyImageDir, writeManifest } from '../../src/images/manifest.js';
import { BIG_FILE_NAME, FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';

const temps = tempDirs();
afterEach(() => temps.removeAll());

const CHUNKS = 12;
const CHUNK_BYTES = 3 * 1024 * 1024 + 5; // not page aligned: the hasher must not assume pages

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hashing image files while they are written', () => {
  it('hashFile gives the sha256 of files of every size around its read size', async () => {
    const dir = await temps.make('sizes');
    for (const size of [0, 1, 4095, HASH_READ_BYTES - 1, HASH_READ_BYTES, HASH_READ_BYTES + 1, 2 * HASH_READ_BYTES + 5]) {
      const data = randomBytes(size);
      await writeFile(join(dir, `f-${size}`), data);
      const got = await hashFile(join(dir, `f-${size}`));
      expect(got.size, `size ${size}`).toBe(size);
      expect(got.sha256.toString('hex'), `size ${size}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('gives the sha256 of the whole file for files appended to across many polls, and skips other names', async () => {
    const dir = await temps.make('grow');
    const hasher = new GrowingFileHasher(dir).start();
    const whole = { a: createHash('sha256'), b: createHash('sha256') };
    await writeFile(join(dir, 'core-1.img'), 'not a page image');
    for (let i = 0; i < CHUNKS; i++) {
      const chunk = randomBytes(CHUNK_BYTES);
      await appendFile(join(dir, 'pages-1.img'), chunk);
      whole.a.update(chunk);
      // pages-2.img appears half way through, as a second process's pages would
      if (i >= CHUNKS / 2) {
        await appendFile(join(dir, 'pages-2.img'), chunk.subarray(0, 1000 + i));
        whole.b.update(chunk.subarray(0, 1000 + i));
      }
      await sleep(GROWING_HASH_IDLE_MS * 4);
    }
    const digests = await hasher.finish();
    expect([...digests.keys()].sort()).toEqual(['pages-1.img', 'pages-2.img']);
    expect(digests.get('pages-1.img')!.size).toBe(CHUNKS * CHUNK_BYTES);
    expect(digests.get('pages-1.img')!.sha256.toString('hex')).toBe(whole.a.digest('hex'));
    expect(digests.get('pages-2.img')!.sha256.toString('hex')).toBe(whole.b.digest('hex'));
  });

  it('writeManifest uses a known digest only when the size matches; verify catches a wrong one', async () => {
    const root = await temps.make('known');
    const dir = await makeRankImage(root, 2 * 1024 * 1024);
    const hasher = new GrowingFileHasher(dir).start();
    const known = await hasher.finish();
    expect([...known.keys()]).toEqual([BIG_FILE_NAME]);

    const good = await writeManifest(dir, FIXTURE_META, { known });
    await verifyImageDir(dir, good);

    // A digest whose size no longer matches is ignored: the file is hashed again.
    const stale = new Map([[BIG_FILE_NAME, { sha256: Buffer.alloc(32), size: 1 }]]);
    const rehashed = await writeManifest(dir, FIXTURE_META, { known: stale });
    expect(rehashed.files).toEqual(good.files);

    // A wrong digest of the right size is taken as given, and verification refuses it.
    const wrong = new Map([[BIG_FILE_NAME, { sha256: Buffer.alloc(32), size: 2 * 1024 * 1024 }]]);
    await writeManifest(dir, FIXTURE_META, { known: wrong });
    await expect(verifyImageDir(dir, await readManifest(dir))).rejects.toThrow(/pages-1\.img: sha256 mismatch/);
  });

  it('reports a directory that cannot be read at finish', async () => {
    const root = await temps.make('gone');
    const dir = join(root, 'never-made');
    const hasher = new GrowingFileHasher(dir).start();
    await expect(hasher.finish()).rejects.toThrow(/ENOENT/);
    await mkdir(dir); // nothing left open: removing the temp dir works
  });
});
