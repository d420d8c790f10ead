// Hashes image files while CRIU is still writing them, so that the manifest
// pass after a dump does not read every byte a second time. Only for files
// that are written front to back and never rewritten: CRIU's pages-N.img
// (the parasite's pages, spliced out in order). Each pass hashes what has
// been appended since the last one, and the next starts at once while the
// files grow; finish() hashes the rest once CRIU has exited. The bytes are
// read back from the page cache, not from disk.
import { createHash, type Hash } from 'node:crypto';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileDigest, feedHash, hashReadBuffers } from './file-durability.js';

/**
 * How long the hashing waits after a pass that found nothing new. A pass that
 * hashed something is followed by the next at once: with a pass every 20 ms,
 * the hashing of a 64 MiB migration dump ended 36-89 ms after CRIU, and
 * 23-58 ms with passes back to back.
 */
export const GROWING_HASH_IDLE_MS = 5;

/**
 * Read size while CRIU writes. Small, because the agent forks CRIU just before
 * (image-transfer-worker.ts): every page of these buffers faults again after
 * that fork, and two of 4 MiB were 2,048 faults (tens of ms here) in every dump.
 */
export const GROWING_HASH_READ_BYTES = 512 * 1024;

/** CRIU's page images: appended to in order, never rewritten. */
export const APPEND_ONLY_IMAGE_RE = /^pages-[0-9]+\.img$/;

interface Growing {
  fh: FileHandle;
  hash: Hash;
  size: number;
}

export class GrowingFileHasher {
  private readonly files = new Map<string, Growing>();
  /** One pair for every pass (passes never overlap): no new buffers at each. */
  private readonly buffers = hashReadBuffers(GROWING_HASH_READ_BYTES);
  private stopped = false;
  private passes?: Promise<void>;
  /** Ends the pause after a pass that found nothing (stop() does not wait it out). */
  private wake?: () => void;
  private failed?: unknown;

  constructor(
    private readonly dir: string,
    private readonly match: (name: string) => boolean = (n) => APPEND_ONLY_IMAGE_RE.test(n),
  ) {}

  start(): this {
    this.passes = (async () => {
      while (!this.stopped && !this.failed) {
        if ((await this.poll(false)) > 0 || this.stopped) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, GROWING_HASH_IDLE_MS);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    })();
    return this;
  }

  /** After the writer has exited: hashes what is left and returns each file's digest. */
  async finish(): Promise<Map<string, FileDigest>> {
    await this.stop();
    try {
      await this.poll(true);
      if (this.failed) throw this.failed;
      const out = new Map<string, FileDigest>();
      for (const [name, f] of this.files) out.set(name, { sha256: f.hash.digest(), size: f.size });
      return out;
    } finally {
      await this.close();
    }
  }

  /** Drops everything (the dump failed). */
  async abort(): Promise<void> {
    await this.stop();
    await this.close();
  }

  /** Ends the passes once the one under way is over. */
  private async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.passes;
  }

  private async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.fh.close().catch(() => undefined)));
    this.files.clear();
  }

  /**
   * Picks up new files and hashes the bytes appended since the last pass (to
   * EOF when `final`); returns how many it hashed.
   */
  private async poll(final: boolean): Promise<number> {
    if (this.failed) return 0;
    let hashed = 0;
    try {
      for (const name of await readdir(this.dir)) {
        if (this.files.has(name) || !this.match(name)) continue;
        this.files.set(name, { fh: await open(join(this.dir, name), 'r'), hash: createHash('sha256'), size: 0 });
      }
      for (const f of this.files.values()) {
        // While CRIU writes, stop at the size seen now; at the end, read to EOF.
        const limit = final ? Number.MAX_SAFE_INTEGER : (await f.fh.stat()).size - f.size;
        if (limit <= 0) continue;
        const n = await feedHash(f.fh, f.hash, f.size, limit, this.buffers);
        f.size += n;
        hashed += n;
      }
    } catch (e) {
      this.failed = e; // finish() reports it; the caller then hashes from scratch
    }
    return hashed;
  }
}
