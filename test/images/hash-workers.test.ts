// Large files are hashed on worker threads (hash-workers.ts): the same digest
// as hashing in this thread, more files than workers at once, a clear error
// for a file that is not there, and nothing that keeps a process alive.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/images/file-durability.js';
import { HASH_WORKERS_MAX, OFF_THREAD_MIN_BYTES, hashFileOffThread } from '../../src/images/hash-workers.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-hash-workers-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) % 256));

describe('hashing on worker threads', () => {
  it('gives the digest and size of every file, more files than workers at once, small and large', async () => {
    const sizes = [0, 5, OFF_THREAD_MIN_BYTES - 1, OFF_THREAD_MIN_BYTES, 9 << 20, 3 << 20, (4 << 20) + 1, 2 << 20, 1 << 21, 7];
    expect(sizes.filter((n) => n >= OFF_THREAD_MIN_BYTES).length).toBeGreaterThan(HASH_WORKERS_MAX);
    const files = sizes.map((n, i) => {
      const path = join(dir, `f${i}`);
      const data = bytes(n, i);
      writeFileSync(path, data);
      return { path, size: n, sha256: createHash('sha256').update(data).digest('hex') };
    });
    const got = await Promise.all(files.map((f) => hashFile(f.path, { fsync: true })));
    expect(got.map((d) => [d.size, d.sha256.toString('hex')])).toEqual(files.map((f) => [f.size, f.sha256]));
  });

  it('names a file that is not there', async () => {
    await expect(hashFileOffThread(join(dir, 'missing.img'))).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringMatching(/missing\.img/) });
    // the worker that failed still serves the next file
    writeFileSync(join(dir, 'next'), bytes(OFF_THREAD_MIN_BYTES, 3));
    expect((await hashFileOffThread(join(dir, 'next'))).size).toBe(OFF_THREAD_MIN_BYTES);
  });

  it('does not keep a process alive once its files are hashed', () => {
    const path = join(dir, 'big');
    writeFileSync(path, bytes(2 << 20, 1));
    const module = join(process.cwd(), 'dist', 'src', 'images', 'hash-workers.js');
    const script = `import(${JSON.stringify(module)}).then(async (m) => { const d = await m.hashFileOffThread(${JSON.stringify(path)}); console.log(d.size); })`;
    // Exits by itself (a referenced idle worker would hold it until the timeout kills it).
    expect(execFileSync(process.execPath, ['-e', script], { timeout: 10_000, encoding: 'utf8' }).trim()).toBe(String(2 << 20));
  });
});
