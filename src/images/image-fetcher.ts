// Fetches one rank's image directory from the agent that holds it (an
// ImageServer): the manifest first, then every file in chunks. Each file is
// hashed while it is written, in order, and renamed from NAME.part only when
// its sha256 matches the manifest. When it does not, the fetcher asks the
// server for the CRC-32 of each chunk of its copy and checks the chunks of
// NAME.part against them: a chunk that differs was damaged on the way (or on
// this disk) and is asked for again, with its CRC; if none differs, the copy
// on the server is damaged. (A CRC with every chunk cost the server 25 ms of
// CPU per 64 MiB on every transfer, and the fetcher as much when it checked
// them on receipt: measured in docs/checkpoint-protocol.md, Performance.)
// The manifest is written last: its presence means the directory is complete.
//
// Resuming: NAME.part holds the bytes received in order, so its length is how
// far the fetch got; a new fetch re-hashes that prefix and asks only for the
// rest. The remote manifest is kept as .manifest.ferry.fetching while a fetch
// is incomplete: a different one (another image under the same name) discards
// the .part files.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import PQueue from 'p-queue';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import type { ImageDirRefInit } from '../gen/proto.js';
import { feedHash, fsyncDir, hashFile, writeAll, writeFileDurably } from './file-durability.js';
import type { ClusterKey } from '../transport/cluster-key.js';
import { ImageClient, dirRef } from './image-client.js';
import { IMAGE_BAD_REQUEST, IMAGE_CORRUPT, IMAGE_IO } from './image-errors.js';
import { IMAGE_CHUNK_BYTES, IMAGE_CRCS_MAX_CHUNKS, IMAGE_MAX_CHUNK_BYTES } from './image-messages.js';
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
/** Times one chunk is asked for when it arrives damaged (wrong size, or a repair's CRC that fails), before giving up. */
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
  /** How long without a connection to the server fails the fetch (default SERVER_UNREACHABLE_MS, image-client.ts). */
  unreachableMs?: number;
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
  /** Chunks asked for again because they did not match the server's CRC (looked at when their file's sha256 did not match). */
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
  const client = new ImageClient(from, options.requestTimeoutMs ?? IMAGE_REQUEST_TIMEOUT_MS, chunkBytes, options.key, options.unreachableMs);
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
            await this.fetchFile(f);
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

  private async fetchFile(f: ManifestFile): Promise<void> {
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
    const part = await stat(partPath).catch(() => undefined);
    const resumeFrom = part && part.size <= f.size ? part.size : 0;
    const fh = await open(partPath, resumeFrom > 0 ? 'r+' : 'w');
    let sha256: string;
    try {
      const hash = createHash('sha256');
      if (resumeFrom > 0) {
        await feedHash(fh, hash, 0, resumeFrom);
        this.bytesResumed += resumeFrom;
        this.progress(resumeFrom);
        trace(`${this.label}: ${f.name}: resuming at ${resumeFrom} of ${f.size}`);
      }
      await this.receiveInto(fh, hash, f, resumeFrom);
      if (this.durable) await fh.sync();
      sha256 = hash.digest('hex');
    } finally {
      await fh.close();
    }
    if (sha256 !== f.sha256) {
      // (a resumed prefix damaged on this disk is repaired the same way)
      const repaired = await this.repairChunks(partPath, f).catch(async (err: unknown) => {
        await unlink(partPath).catch(() => undefined); // it holds the damaged chunk
        throw err;
      });
      if (repaired > 0) sha256 = (await hashFile(partPath)).sha256.toString('hex');
    }
    if (sha256 !== f.sha256) {
      await unlink(partPath).catch(() => undefined);
      throw new FerryError(
        IMAGE_CORRUPT,
        `${this.label}: ${f.name}: sha256 mismatch after transfer from ${this.client.peer} ` +
          `(manifest ${f.sha256.slice(0, 16)}..., received ${sha256.slice(0, 16)}...): the copy on that host is damaged`,
      );
    }
    await rename(partPath, finalPath);
  }

  /** Streams [from, size) of a file into `fh`, a window of chunk requests ahead, writing and hashing in order. */
  private async receiveInto(fh: FileHandle, hash: ReturnType<typeof createHash>, f: ManifestFile, from: number): Promise<void> {
    const inFlight: Promise<Buffer>[] = [];
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
      const data = await inFlight.shift()!;
      if (this.failure) throw this.failure;
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
   * After a file's sha256 failed: the chunks of `partPath` (cut from offset 0)
   * whose CRC-32 is not that of the server's copy are asked for again (their
   * CRC checked on receipt) and written in place. Returns how many were; 0
   * means the file is as the server has it, so the server's copy is what is
   * damaged.
   */
  private async repairChunks(partPath: string, f: ManifestFile): Promise<number> {
    const count = Math.ceil(f.size / this.chunkBytes);
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    const fh = await open(partPath, 'r+');
    let repaired = 0;
    try {
      for (let first = 0; first < count; first += IMAGE_CRCS_MAX_CHUNKS) {
        const crcs = await this.serverCrcs(f, first, Math.min(IMAGE_CRCS_MAX_CHUNKS, count - first));
        for (const [i, crc] of crcs.entries()) {
          const offset = (first + i) * this.chunkBytes;
          const length = Math.min(this.chunkBytes, f.size - offset);
          const { bytesRead } = await fh.read(buf, 0, length, offset);
          if (bytesRead === length && crc32(buf.subarray(0, length)) === crc) continue;
          this.chunksRetried++;
          trace(`${this.label}: ${f.name}: chunk at ${offset} differs from the server's (CRC-32 mismatch), asking again`);
          await writeAll(fh, await this.fetchChunk(f, offset, length, true), offset);
          repaired++;
        }
      }
      if (repaired > 0 && this.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    return repaired;
  }

  /** The CRC-32 of `chunks` chunks of the server's copy of `f`, from chunk `first`. */
  private async serverCrcs(f: ManifestFile, first: number, chunks: number): Promise<number[]> {
    const what = `${this.label}: ${f.name}: CRC-32 of chunks ${first} to ${first + chunks - 1}`;
    const { message } = await this.client.request(what, {
      chunk_crcs_request: { dir: this.ref(), name: f.name, chunk_bytes: this.chunkBytes, first_chunk: first, chunks },
    });
    const crcs = message.chunk_crcs_reply?.crc32 ?? [];
    if (crcs.length !== chunks) throw new FerryError(IMAGE_CORRUPT, `image server ${this.client.peer}: ${what}: ${crcs.length} CRCs instead of ${chunks}`);
    return crcs;
  }

  private ref(): ImageDirRefInit {
    return dirRef(this.manifest.jobId, this.manifest.epoch, this.manifest.rank);
  }

  /**
   * One chunk, asked for again (up to IMAGE_CHUNK_ATTEMPTS times) while it
   * arrives with the wrong size, or (withCrc: a repair) a CRC-32 that does not match.
   */
  private async fetchChunk(f: ManifestFile, offset: number, length: number, withCrc: boolean): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      if (this.failure) throw this.failure;
      const what = `${this.label}: ${f.name}: chunk at ${offset}`;
      const { message, data } = await this.client.request(what, {
        chunk_request: { dir: this.ref(), name: f.name, offset, length, with_crc32: withCrc },
      });
      const c = message.chunk_reply;
      const got = data ?? Buffer.alloc(0);
      this.bytesReceived += got.length;
      let problem: string | undefined;
      if (!c || c.name !== f.name || Number(c.offset) !== offset) problem = 'reply for another chunk';
      else if (c.length !== length || got.length !== length) problem = `${got.length} bytes instead of ${length}`;
      else if (withCrc && crc32(got) !== c.crc32) problem = 'CRC-32 mismatch';
      if (!problem) return got;
      if (attempt >= IMAGE_CHUNK_ATTEMPTS) {
        throw new FerryError(IMAGE_CORRUPT, `image server ${this.client.peer}: ${what}: ${problem}, ${attempt} times`);
      }
      this.chunksRetried++;
      trace(`${what}: ${problem}, asking again`);
    }
  }
}
