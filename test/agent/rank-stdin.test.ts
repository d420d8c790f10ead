// Rank 0's standard input file (src/agent/rank-stdin.ts): written read-only
// into the rank's init directory, copied into the rank's image at DUMP, put
// back at its path from there at RESTORE when that host lacks it, and removed
// with the directory. (test/e2e/checkpoint-restart test 14 runs it for real.)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RANK_INIT_ROOT_ENV, STDIN_FILE, createRankInitDir, removeRankInitDir } from '../../src/agent/rank-init-dir.js';
import { IMAGE_STDIN_FILE, keepStdinWithImage, placeStdinForRestore, writeStdinFile } from '../../src/agent/rank-stdin.js';
import type { ImageFile, ImageSummary } from '../../src/criu/criu-images.js';

const saved = process.env[RANK_INIT_ROOT_ENV];
let top: string;
beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'ferry-rank-stdin-'));
  process.env[RANK_INIT_ROOT_ENV] = join(top, 'rank-init');
});
afterEach(() => {
  if (saved === undefined) delete process.env[RANK_INIT_ROOT_ENV];
  else process.env[RANK_INIT_ROOT_ENV] = saved;
  rmSync(top, { recursive: true, force: true });
});

/** A summary holding `files` (the fields placeStdinForRestore reads). */
const summaryOf = (dir: string, files: Partial<ImageFile>[]): ImageSummary =>
  ({ dir, imgVersion: 0, processes: [], memoryPages: 0, memoryBytes: 0, pagesFileBytes: 0, files: files.map((f, i) => ({ id: i, flags: 0, pos: 0, uses: [], fds: [], path: '', ...f })) }) as ImageSummary;

describe('rank 0 standard input file', () => {
  it('is written read-only into the init directory, once, and goes with the directory', () => {
    const dir = createRankInitDir('j', 0);
    const path = writeStdinFile(dir, Buffer.from('1\n2\n'));
    expect(path).toBe(join(dir, STDIN_FILE));
    expect(readFileSync(path, 'utf8')).toBe('1\n2\n');
    expect(statSync(path).mode & 0o777).toBe(0o400);
    expect(() => writeStdinFile(dir, Buffer.from('x'))).toThrow(/EEXIST/); // never replaced under a running rank
    removeRankInitDir(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it('travels with the image: copied at DUMP, put back at RESTORE where it is missing, left alone where it is there', async () => {
    const dir = createRankInitDir('j', 0);
    const image = join(top, 'images', 'j', '1', 'rank-0');
    mkdirSync(image, { recursive: true });
    expect(await keepStdinWithImage(undefined, image)).toBe(false);
    expect(await keepStdinWithImage(dir, image)).toBe(false); // no input: nothing to carry
    expect(existsSync(join(image, IMAGE_STDIN_FILE))).toBe(false);
    const path = writeStdinFile(dir, Buffer.from('7\n8\n9\n'));
    expect(await keepStdinWithImage(dir, image)).toBe(true);
    expect(readFileSync(join(image, IMAGE_STDIN_FILE), 'utf8')).toBe('7\n8\n9\n');

    // Another host: the directory is gone. Only the file the image holds open in an init directory comes back.
    const elsewhere = join(top, 'job-dir', STDIN_FILE);
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    const summary = summaryOf(image, [{ path: dir, uses: ['cwd'] }, { path, sizeBytes: 6, uses: ['fd'] }, { path: elsewhere, uses: ['fd'] }]);
    await placeStdinForRestore(summary, image);
    expect(readFileSync(path, 'utf8')).toBe('7\n8\n9\n');
    expect(statSync(path).mode & 0o777).toBe(0o400);
    expect(existsSync(elsewhere)).toBe(false);

    // There already with its size (the host that dumped it): untouched.
    const before = statSync(path).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await placeStdinForRestore(summary, image);
    expect(statSync(path).mtimeMs).toBe(before);

    // An image without the copy: nothing is made up (the precheck names the missing file).
    rmSync(path);
    rmSync(join(image, IMAGE_STDIN_FILE));
    await placeStdinForRestore(summary, image);
    expect(existsSync(path)).toBe(false);
  });
});
