// Fetches one rank's image directory from the agent that holds it (an
// ImageServer): the manifest first, then every file in chunks. Each file is
// hashed while it is written, in order, and renamed from NAME.part only when
// its sha256 matches the manifest. Every chunk comes with the server's CRC-32
// of it, kept for the file: the CRCs are checked only when the file's sha256
// does not match. A chunk whose CRC then fails was damaged on the way and is
// asked for again; if none fails, the copy on the server is damaged.
// (Checking every chunk's CRC on receipt cost the fetching process 25 ms of
// CPU per 64 MiB, on top of the sha256 it computes anyway: measured in
// docs/checkpoint-protocol.md, Performance.)
// The manifest is written last: its presence means the directory is complete.
//
// Resuming: NAME.part holds the bytes received in order, so its length is how
// far the fetch got; a new fetch re-hashes that prefix and asks only for the
// rest. (If the prefix was damaged, on the way or on disk, the file's sha256
// fails, and as the prefix's CRCs were not kept, the file is fetched once more
// from the start.) The remote manifest is kept as .manifest.ferry.fetching while
// a fetch is incomplete: a different one (another image under the same name)
// discards the .part files.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import PQueue from 'p-queue';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { feedHash, fsyncDir, hashFile, writeAll, writeFileDurably } from './file-durability.js';
import type { ClusterKey } from '../transport/cluster-key.js';
import { ImageClient, dirRef } from './image-client.js';
import { IMAGE_BAD_REQUEST, IMAGE_CORRUPT, IMAGE_IO } from './image-errors.js';
import { IMAGE_CHUNK_BYTES, IMAGE_MAX_CHUNK_BYTES } from './image-messages.js';
import { MANIFEST_FILE_NAME, PART_SUFFIX, imageLabel } from './image-paths.js';
import { decodeManifestFile, type Manifest, type ManifestFile } from './manifest.js';

const trace = tracer('images');

/** Files fetched at the same time, by default. */
export const IMAGE_FETCH_CONCURRENCY = 4;
/** Chunk requests in flight per file: keeps one large file streaming despite the round trip. */
export const IMAGE_CHUNKS_IN_FLIGHT_PER_FILE = 8;
/**
 * A received file is handed to the disk (fdatasync, in the background) every
 * this many bytes. The kernel would start writeback on its own only past its
 * dirty threshold (gigabytes here), so without it the whole file waited for
 * the disk at the final fsync, after the transfer instead of during it.
 */
export const IMAGE_WRITEBACK_EVERY_BYTES = 32 * 1024 * 1024;
/** How long one request may go unanswered before the peer counts as unreachable. */
export const IMAGE_REQUEST_TIMEOUT_MS = 15_000;
/** Times one chunk is asked for when it arrives damaged (wrong size, or its CRC once checked), before giving up. */
export const IMAGE_CHUNK_ATTEMPTS = 3;
const FETCHING_MANIFEST_NAME = `.${MANIFEST_FILE_NAME}.fetching`;

export interface FetchImageOptions {
  /** The holding agent's ImageServer address (tcp://HOST:PORT). */
  from: string;
  jobId: string;
  epoch: number;
  rank: number;
  /** The local image directory to fill (created if needed). */
  into: string;
  /** Files fetched at once (default IMAGE_FETCH_CONCURRENCY). */
  concurrency?: number;
  /** Chunk size (default 1 MiB, at most IMAGE_MAX_CHUNK_BYTES). */
  chunkBytes?: number;
  requestTimeoutMs?: number;
  /**
   * The manifest's sha256 (hex) as the catalog recorded it at COMMITTED: a
   * server holding any other manifest is refused before a byte is transferred.
   */
  manifestSha256?: string;
  /** Called as bytes become verified and durable-bound: bytes done (resumed ones included) of the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /**
   * false: verify but do not fsync the files, the directory or the manifest
   * (a migration's copy: the rank is restored from it at once and the copy is
   * discarded after; its source keeps its own until then). Default true.
   */
  durable?: boolean;
  /** The cluster key (null: none); default the process's (src/transport/cluster-key.ts). */
  key?: ClusterKey | null;
}

export interface FetchImageResult {
  manifest: Manifest;
  /** Chunk bytes that crossed the network in this fetch (re-requested chunks included). */
  bytesReceived: number;
  /** Bytes taken from .part files or complete files left by an earlier, broken fetch. */
  bytesResumed: number;
  /** Chunks asked for again because their CRC did not match (found when their file's sha256 did not). */
  chunksRetried: number;
  /** True when `into` already held this exact image: nothing was fetched. */
  alreadyComplete: boolean;
}

export async function fetchImageDir(options: FetchImageOptions): Promise<FetchImageResult> {
  const { from, jobId, epoch, rank, into } = options;
  const chunkBytes = options.chunkBytes ?? IMAGE_CHUNK_BYTES;
  const concurrency = options.concurrency ?? IMAGE_FETCH_CONCURRENCY;
  if (!(chunkBytes > 0 && chunkBytes <= IMAGE_MAX_CHUNK_BYTES)) {
    throw new FerryError(IMAGE_BAD_REQUEST, `chunkBytes ${chunkBytes} must be between 1 and ${IMAGE_MAX_CHUNK_BYTES}`);
  }
  if (!(concurrency >= 1)) throw new FerryError(IMAGE_BAD_REQUEST, `concurrency ${concurrency} must be at least 1`);
  const label = imageLabel({ epoch, rank });
  const startedAt = performance.now();
  const client = new ImageClient(from, options.requestTimeoutMs ?? IMAGE_REQUEST_TIMEOUT_MS, chunkBytes, options.key);
  const ref = dirRef(jobId, epoch, rank);
  try {
    const { message } = await client.request(`manifest of ${label} of job ${jobId}`, { manifest_request: { dir: ref } });
    const manifestBytes = Buffer.from(message.manifest_reply?.manifest_file ?? new Uint8Array());
    const manifest = decodeManifestFile(manifestBytes, `image server ${from}, manifest of ${label}`);
    if (manifest.jobId !== jobId || manifest.epoch !== epoch || manifest.rank !== rank) {
      throw new FerryError(IMAGE_CORRUPT, `image server ${from} sent the manifest of job ${manifest.jobId} ${imageLabel(manifest)} when asked for job ${jobId} ${label}`);
    }
    if (options.manifestSha256 && manifest.manifestSha256 !== options.manifestSha256) {
      throw new FerryError(
        IMAGE_CORRUPT,
        `${label}: image server ${from} holds manifest ${manifest.manifestSha256.slice(0, 16)}..., ` +
          `not the committed one (${options.manifestSha256.slice(0, 16)}...)`,
      );
    }
    await mkdir(into, { recursive: true });
    const existing = await readFile(join(into, MANIFEST_FILE_NAME)).catch(() => undefined);
    if (existing) {
      if (existing.equals(manifestBytes)) {
        options.onProgress?.(manifest.totalBytes, manifest.totalBytes);
        return { manifest, bytesReceived: 0, bytesResumed: manifest.totalBytes, chunksRetried: 0, alreadyComplete: true };
      }
      throw new FerryError(IMAGE_BAD_REQUEST, `${into} already holds another image of job ${jobId} ${label}; remove it first`);
    }
    await forgetOtherFetch(into, manifestBytes, manifest);

    const durable = options.durable ?? true;
    const transfer = new Transfer(client, manifest, into, chunkBytes, concurrency, durable, options.onProgress);
    await transfer.run();
    const receipts = client.sendReceipts(); // the server's last buffers back, while the manifest is written
    if (durable) {
      await fsyncDir(into);
      await writeFileDurably(into, MANIFEST_FILE_NAME, manifestBytes);
    } else {
      await writeFile(join(into, MANIFEST_FILE_NAME), manifestBytes);
    }
    await receipts;
    await unlink(join(into, FETCHING_MANIFEST_NAME)).catch(() => undefined);
    trace(`fetched ${label} of job ${jobId} from ${from}: ${transfer.bytesReceived} bytes received, ${transfer.bytesResumed} resumed, in ${(performance.now() - startedAt).toFixed(1)} ms`);
    return {
      manifest,
      bytesReceived: transfer.bytesReceived,
      bytesResumed: transfer.bytesResumed,
      chunksRetried: transfer.chunksRetried,
      alreadyComplete: false,
    };
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError(IMAGE_IO, `fetching job ${jobId} ${label} from ${from} into ${into}: ${errorMessage(err)}`);
  } finally {
    await client.close();
  }
}

/** Keeps .part files only when they belong to this very image (same manifest bytes). */
async function forgetOtherFetch(into: string, manifestBytes: Buffer, manifest: Manifest): Promise<void> {
  const path = join(into, FETCHING_MANIFEST_NAME);
  const previous = await readFile(path).catch(() => undefined);
  if (previous && previous.equals(manifestBytes)) return;
  for (const f of manifest.files) {
    await unlink(join(into, f.name + PART_SUFFIX)).catch(() => undefined);
    await unlink(join(into, f.name)).catch(() => undefined);
  }
  await writeFile(path, manifestBytes);
}

/** Where a chunk went in its file, and the CRC-32 the server sent with it. */
interface ReceivedChunk {
  offset: number;
  length: number;
  crc32: number;
}

class Transfer {
  bytesReceived = 0;
  bytesResumed = 0;
  chunksRetried = 0;
  private doneBytes = 0;
  private failure: Error | undefined;
  private readonly label: string;
  private readonly window: number;

  constructor(
    private readonly client: ImageClient,
    private readonly manifest: Manifest,
    private readonly into: string,
    private readonly chunkBytes: number,
    private readonly concurrency: number,
    private readonly durable: boolean,
    private readonly onProgress: ((doneBytes: number, totalBytes: number) => void) | undefined,
  ) {
    this.label = imageLabel(manifest);
    this.window = IMAGE_CHUNKS_IN_FLIGHT_PER_FILE;
  }

  async run(): Promise<void> {
    const queue = new PQueue({ concurrency: this.concurrency });
    // Largest first: the big pages-*.img files set the pace, small files fill in.
    const files = [...this.manifest.files].sort((a, b) => b.size - a.size);
    const results = await Promise.allSettled(
      files.map((f) =>
        queue.add(async () => {
          if (this.failure) return;
          try {
            await this.fetchFile(f, true);
          } catch (err) {
            if (!this.failure) {
              this.failure = err as Error; // queued files see it and return at once
              this.client.failAll(err as Error); // the other files stop at their next chunk
            }
            throw err;
          }
        }),
      ),
    );
    if (this.failure) throw this.failure;
    const rejected = results.find((r) => r.status === 'rejected');
    if (rejected) throw (rejected as PromiseRejectedResult).reason;
  }

  private progress(bytes: number): void {
    this.doneBytes += bytes;
    this.onProgress?.(this.doneBytes, this.manifest.totalBytes);
  }

  private async fetchFile(f: ManifestFile, mayResume: boolean): Promise<void> {
    const finalPath = join(this.into, f.name);
    const partPath = finalPath + PART_SUFFIX;
    // A file renamed by an earlier fetch that died before the manifest was written.
    const done = await stat(finalPath).catch(() => undefined);
    if (done) {
      if (done.size === f.size && (await hashFile(finalPath)).sha256.toString('hex') === f.sha256) {
        this.bytesResumed += f.size;
        this.progress(f.size);
        return;
      }
      await unlink(finalPath);
    }
    const part = mayResume ? await stat(partPath).catch(() => undefined) : undefined;
    const resumeFrom = part && part.size <= f.size ? part.size : 0;
    const fh = await open(partPath, resumeFrom > 0 ? 'r+' : 'w');
    const chunks: ReceivedChunk[] = [];
    let sha256: string;
    try {
      const hash = createHash('sha256');
      if (resumeFrom > 0) {
        await feedHash(fh, hash, 0, resumeFrom);
        this.bytesResumed += resumeFrom;
        this.progress(resumeFrom);
        trace(`${this.label}: ${f.name}: resuming at ${resumeFrom} of ${f.size}`);
      }
      await this.receiveInto(fh, hash, f, resumeFrom, chunks);
      if (this.durable) await fh.sync();
      sha256 = hash.digest('hex');
    } finally {
      await fh.close();
    }
    if (sha256 !== f.sha256 && resumeFrom === 0) {
      const repaired = await this.repairChunks(partPath, f, chunks).catch(async (err: unknown) => {
        await unlink(partPath).catch(() => undefined); // it holds the damaged chunk
        throw err;
      });
      if (repaired > 0) sha256 = (await hashFile(partPath)).sha256.toString('hex');
    }
    if (sha256 !== f.sha256) {
      await unlink(partPath).catch(() => undefined);
      if (resumeFrom > 0) {
        // The kept prefix was damaged on this disk: fetch the whole file once more.
        trace(`${this.label}: ${f.name}: resumed file failed its sha256, fetching it again from the start`);
        this.doneBytes -= f.size;
        this.bytesResumed -= resumeFrom;
        return this.fetchFile(f, false);
      }
      throw new FerryError(
        IMAGE_CORRUPT,
        `${this.label}: ${f.name}: sha256 mismatch after transfer from ${this.client.peer} ` +
          `(manifest ${f.sha256.slice(0, 16)}..., received ${sha256.slice(0, 16)}...): the copy on that host is damaged`,
      );
    }
    await rename(partPath, finalPath);
  }

  /**
   * Streams [from, size) of a file into `fh`, a window of chunk requests ahead,
   * writing and hashing in order; each chunk's place and CRC go to `chunks`.
   */
  private async receiveInto(
    fh: FileHandle,
    hash: ReturnType<typeof createHash>,
    f: ManifestFile,
    from: number,
    chunks: ReceivedChunk[],
  ): Promise<void> {
    const inFlight: Promise<ReceivedChunk & { data: Buffer }>[] = [];
    let next = from;
    const ask = () => {
      const length = Math.min(this.chunkBytes, f.size - next);
      const p = this.fetchChunk(f, next, length, false);
      p.catch(() => undefined); // awaited below in order; avoids an unhandled rejection meanwhile
      inFlight.push(p);
      next += length;
    };
    while (next < f.size && inFlight.length < this.window) ask();
    let at = from;
    // Writeback while receiving: the final fsync then waits only for the tail.
    let syncing: Promise<void> | undefined;
    let unsynced = 0;
    while (inFlight.length > 0) {
      const { data, ...chunk } = await inFlight.shift()!;
      if (this.failure) throw this.failure;
      chunks.push(chunk);
      // hashed while its write runs on the libuv pool (as copyAndHash does): the sha256 of a 1 MiB
      // chunk (0.8 ms here) no longer waits for the write, nor the write for it
      const written = writeAll(fh, data, at);
      hash.update(data);
      await written;
      at += data.length;
      this.progress(data.length);
      unsynced += data.length;
      if (this.durable && unsynced >= IMAGE_WRITEBACK_EVERY_BYTES && !syncing) {
        unsynced = 0;
        syncing = fh.datasync().finally(() => (syncing = undefined));
      }
      if (next < f.size && !this.failure) ask();
    }
    await syncing;
  }

  /**
   * After a file's sha256 failed: the chunks of `partPath` whose CRC is not the
   * server's are asked for again (their CRC checked on receipt) and written in
   * place. Returns how many were; 0 means every chunk arrived as the server
   * sent it, so the server's copy is what is damaged.
   */
  private async repairChunks(partPath: string, f: ManifestFile, chunks: readonly ReceivedChunk[]): Promise<number> {
    const fh = await open(partPath, 'r+');
    let repaired = 0;
    try {
      for (const c of chunks) {
        const buf = Buffer.alloc(c.length);
        const { bytesRead } = await fh.read(buf, 0, c.length, c.offset);
        if (bytesRead === c.length && crc32(buf) === c.crc32) continue;
        this.chunksRetried++;
        trace(`${this.label}: ${f.name}: chunk at ${c.offset} arrived damaged (CRC-32 mismatch), asking again`);
        const { data } = await this.fetchChunk(f, c.offset, c.length, true);
        await writeAll(fh, data, c.offset);
        repaired++;
      }
      if (repaired > 0 && this.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    return repaired;
  }

  /**
   * One chunk, asked for again (up to IMAGE_CHUNK_ATTEMPTS times) while it
   * arrives with the wrong size, or (checkCrc) a CRC-32 that does not match.
   */
  private async fetchChunk(f: ManifestFile, offset: number, length: number, checkCrc: boolean): Promise<ReceivedChunk & { data: Buffer }> {
    for (let attempt = 1; ; attempt++) {
      if (this.failure) throw this.failure;
      const what = `${this.label}: ${f.name}: chunk at ${offset}`;
      const { message, data } = await this.client.request(what, {
        chunk_request: { dir: dirRef(this.manifest.jobId, this.manifest.epoch, this.manifest.rank), name: f.name, offset, length },
      });
      const c = message.chunk_reply;
      const got = data ?? Buffer.alloc(0);
      this.bytesReceived += got.length;
      let problem: string | undefined;
      if (!c || c.name !== f.name || Number(c.offset) !== offset) problem = 'reply for another chunk';
      else if (c.length !== length || got.length !== length) problem = `${got.length} bytes instead of ${length}`;
      else if (checkCrc && crc32(got) !== c.crc32) problem = 'CRC-32 mismatch';
      if (!problem) return { offset, length, crc32: c!.crc32, data: got };
      if (attempt >= IMAGE_CHUNK_ATTEMPTS) {
        throw new FerryError(IMAGE_CORRUPT, `image server ${this.client.peer}: ${what}: ${problem}, ${attempt} times`);
      }
      this.chunksRetried++;
      trace(`${what}: ${problem}, asking again`);
    }
  }
}
