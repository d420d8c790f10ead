import { open, readFile, unlink, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/common/ferry-error.js';
import { ErrorCode } from '../../src/gen/proto.js';
import { copyImageDir } from '../../src/images/image-copy.js';
import { MANIFEST_FILE_NAME } from '../../src/images/image-paths.js';
import { MANIFEST_FORMAT_VERSION, readManifest, verifyImageDir, writeManifest } from '../../src/images/manifest.js';
import { BIG_FILE_NAME, FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';

const temps = tempDirs();
afterEach(() => temps.removeAll());

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x01;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

async function caught(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a rejection');
}

describe('image manifest', () => {
  it('lists every file with size and sha256, reads back identical, and verifies', async () => {
    const dir = await makeRankImage(await temps.make('m'), 5 * 1024 * 1024);
    const written = await writeManifest(dir, { ...FIXTURE_META, createdMs: 1_700_000_000_000 });
    expect(written.files.map((f) => f.name)).toEqual(['core-1.img', 'empty.img', 'inventory.img', 'mm-1.img', 'pagemap-1.img', BIG_FILE_NAME].sort());
    const empty = written.files.find((f) => f.name === 'empty.img')!;
    expect(empty.size).toBe(0);
    expect(empty.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const big = written.files.find((f) => f.name === BIG_FILE_NAME)!;
    const { createHash } = await import('node:crypto');
    expect(big.sha256).toBe(createHash('sha256').update(await readFile(join(dir, BIG_FILE_NAME))).digest('hex'));
    const read = await readManifest(dir);
    expect(read).toEqual(written);
    expect(read.formatVersion).toBe(MANIFEST_FORMAT_VERSION);
    expect(read.totalBytes).toBe(written.files.reduce((s, f) => s + f.size, 0));
    await verifyImageDir(dir, read);
  });

  it('writes the same manifest without fsync for images that only travel (durable: false)', async () => {
    const dir = await makeRankImage(await temps.make('t'), 1024 * 1024);
    const meta = { ...FIXTURE_META, createdMs: 1_700_000_000_000 };
    const transient = await writeManifest(dir, meta, { durable: false });
    expect(await readManifest(dir)).toEqual(transient);
    await verifyImageDir(dir, transient);
    await unlink(join(dir, MANIFEST_FILE_NAME));
    expect((await writeManifest(dir, meta)).manifestSha256).toBe(transient.manifestSha256);
  });

  it('a flipped byte, a truncated file and a missing file are each named with epoch, rank and file', async () => {
    const dir = await makeRankImage(await temps.make('m'), 2 * 1024 * 1024);
    const manifest = await writeManifest(dir, FIXTURE_META);
    await flipByte(join(dir, BIG_FILE_NAME), 1_000_000);
    let err = await caught(verifyImageDir(dir, manifest));
    expect(err.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(err.message).toContain('epoch 3 rank 1: pages-1.img: sha256 mismatch');
    expect(err.message).not.toContain('core-1.img');

    await truncate(join(dir, 'core-1.img'), 100);
    await unlink(join(dir, 'inventory.img'));
    err = await caught(verifyImageDir(dir, manifest));
    expect(err.message).toContain('epoch 3 rank 1: core-1.img: size mismatch (manifest 12345 bytes, found 100)');
    expect(err.message).toContain('epoch 3 rank 1: inventory.img: missing');
    expect(err.message).toContain('epoch 3 rank 1: pages-1.img: sha256 mismatch');
  });

  it('refuses a wrong magic, a newer format version, a damaged body and a missing manifest, naming the file', async () => {
    const dir = await makeRankImage(await temps.make('m'), 1024);
    await writeManifest(dir, FIXTURE_META);
    const path = join(dir, MANIFEST_FILE_NAME);
    const good = await readFile(path);

    const newer = Buffer.from(good);
    newer.writeUInt32LE(MANIFEST_FORMAT_VERSION + 1, 8);
    await writeFile(path, newer);
    let err = await caught(readManifest(dir));
    expect(err.message).toContain(path);
    expect(err.message).toContain(`format version ${MANIFEST_FORMAT_VERSION + 1} is newer`);

    const foreign = Buffer.from(good);
    foreign.write('CRIUIMG!', 0, 'ascii');
    await writeFile(path, foreign);
    err = await caught(readManifest(dir));
    expect(err.message).toContain(path);
    expect(err.message).toContain('wrong magic number');

    const damaged = Buffer.from(good);
    damaged[20] = damaged[20]! ^ 0xff;
    await writeFile(path, damaged);
    err = await caught(readManifest(dir));
    expect(err.message).toMatch(/damaged|cannot decode/);

    await unlink(path);
    err = await caught(readManifest(dir));
    expect(err.code).toBe(ErrorCode.IMAGE_MISSING);
    expect(err.message).toContain(`${path}: no manifest`);
  });

  it('copyImageDir copies from a shared directory with verification, manifest last', async () => {
    const shared = await makeRankImage(await temps.make('shared'), 3 * 1024 * 1024);
    const manifest = await writeManifest(shared, FIXTURE_META);
    const into = join(await temps.make('local'), 'rank-1');
    const progress: number[] = [];
    const copied = await copyImageDir(shared, into, { onProgress: (done) => progress.push(done) });
    expect(copied).toEqual(manifest);
    expect(progress.at(-1)).toBe(manifest.totalBytes);
    expect(await readFile(join(into, MANIFEST_FILE_NAME))).toEqual(await readFile(join(shared, MANIFEST_FILE_NAME)));
    await verifyImageDir(into, await readManifest(into));
    for (const f of manifest.files) expect((await readFile(join(into, f.name))).equals(await readFile(join(shared, f.name)))).toBe(true);

    // A damaged source file: refused, named, and the copy stays incomplete (no manifest).
    const into2 = join(await temps.make('local'), 'rank-1');
    await flipByte(join(shared, 'mm-1.img'), 5);
    const err = await caught(copyImageDir(shared, into2));
    expect(err.message).toContain('epoch 3 rank 1: mm-1.img: sha256 mismatch');
    await expect(readFile(join(into2, MANIFEST_FILE_NAME))).rejects.toThrow(/ENOENT/);
  });
});
