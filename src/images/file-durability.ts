// Hashing and fsync helpers for image files. Hashing reads with two buffers so
// that the next read (libuv thread pool) runs while the current buffer is
// hashed (main thread); fsync of a file runs in the pool alongside its hashing.
import { createHash } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { OFF_THREAD_MIN_BYTES, hashFileOffThread } from './hash-workers.js';

/**
 * fsyncs of image files at once in this process. Each holds one of libuv's
 * 4 pool threads for as long as the disk takes to write the file back; with
 * every pool thread in an fsync, the reads that hash the next files (the same
 * pool) waited for whole writebacks. Manifests of 4 fresh 64 MiB images in
 * one process: 375-383 ms unbounded, 303-317 ms with 2 at once (2 images:
 * 188-206 vs 125-143 ms; 1 at once is slower, 3 about the same as 2).
 */
export const FSYNCS_AT_ONCE = 2;
const fsyncSlots = new PQueue({ concurrency: FSYNCS_AT_ONCE });

/** fh.sync() through fsyncSlots. */
function syncBounded(fh: FileHandle): Promise<void> {
  return fsyncSlots.add(() => fh.sync(), { throwOnTimeout: true });
}

/** Read size for hashing: large enough that per-call overhead vanishes. */
export const HASH_READ_BYTES = 4 * 1024 * 1024;

export interface FileDigest {
  sha256: Buffer;
  size: number;
}

/**
 * The two read buffers feedHash alternates between, no larger than `bytes`
 * needs. Kept by a caller that hashes often (GrowingFileHasher's passes):
 * fresh 4 MiB buffers on each call are garbage the collector then
 * spends whole dump phases on.
 */
export function hashReadBuffers(bytes = HASH_READ_BYTES): [Buffer, Buffer] {
  const n = Math.max(1, Math.min(HASH_READ_BYTES, bytes));
  return [Buffer.allocUnsafe(n), Buffer.allocUnsafe(n)];
}

/**
 * Streams a file into a new sha256 and returns its digest and length (a
 * large one on a worker thread, hash-workers.ts); with `fsync` the file is
 * also flushed to disk while it is hashed.
 */
export async function hashFile(path: string, options: { fsync?: boolean } = {}): Promise<FileDigest> {
  const fh = await open(path, 'r');
  try {
    const synced = options.fsync ? syncBounded(fh) : Promise.resolve();
    const { size: known } = await fh.stat();
    let digest: FileDigest;
    if (known >= OFF_THREAD_MIN_BYTES) {
      digest = await hashFileOffThread(path);
    } else {
      const hash = createHash('sha256');
      // Sized to the file (most of an image's files are a few KiB); a file still growing is read in several passes.
      const size = await feedHash(fh, hash, 0, Number.MAX_SAFE_INTEGER, hashReadBuffers(known + 1));
      digest = { sha256: hash.digest(), size };
    }
    await synced;
    return digest;
  } finally {
    await fh.close();
  }
}

/**
 * Feeds bytes [from, from+limit) of an open file into `hash`; returns how many
 * it read. `bufs` (from hashReadBuffers) must not be in use by another call.
 */
export async function feedHash(
  fh: FileHandle,
  hash: { update(data: Uint8Array): unknown },
  from: number,
  limit: number,
  bufs: [Buffer, Buffer] = hashReadBuffers(limit),
): Promise<number> {
  let which = 0;
  let pos = from;
  const end = from + limit;
  const readAt = (buf: Buffer, at: number) => fh.read(buf, 0, Math.min(buf.length, end - at), at);
  if (end <= pos) return 0;
  let pending = readAt(bufs[which]!, pos);
  for (;;) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) break;
    const current = bufs[which]!;
    pos += bytesRead;
    which ^= 1;
    if (pos < end) pending = readAt(bufs[which]!, pos);
    else pending = Promise.resolve({ bytesRead: 0, buffer: bufs[which]! });
    hash.update(current.subarray(0, bytesRead));
  }
  return pos - from;
}

/** fsync of one file (or directory) by name. */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await syncBounded(fh);
  } finally {
    await fh.close();
  }
}

/** fsync of a directory: makes the names created or renamed in it durable. */
export const fsyncDir = fsyncFile;

/** Writes `data` to DIR/NAME atomically: temp name, fsync, rename, fsync of the directory. */
export async function writeFileDurably(dir: string, name: string, data: Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Copies src to dst (created or truncated), hashing the bytes as they pass:
 * one read of the source, no second pass. dst is fsynced before returning.
 */
export async function copyAndHash(src: string, dst: string): Promise<FileDigest> {
  const input = await open(src, 'r');
  try {
    const output = await open(dst, 'w', 0o644);
    try {
      const hash = createHash('sha256');
      const bufs = [Buffer.allocUnsafe(HASH_READ_BYTES), Buffer.allocUnsafe(HASH_READ_BYTES)];
      let which = 0;
      let pos = 0;
      let pending = input.read(bufs[which]!, 0, HASH_READ_BYTES, pos);
      for (;;) {
        const { bytesRead } = await pending;
        if (bytesRead === 0) break;
        const current = bufs[which]!.subarray(0, bytesRead);
        which ^= 1;
        pending = input.read(bufs[which]!, 0, HASH_READ_BYTES, pos + bytesRead);
        const written = writeAll(output, current, pos);
        hash.update(current);
        await written;
        pos += bytesRead;
      }
      await output.sync();
      return { sha256: hash.digest(), size: pos };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** Writes all of `data` at `at` (a write may take less). */
export async function writeAll(fh: FileHandle, data: Buffer, at: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, at + done);
    done += bytesWritten;
  }
}
