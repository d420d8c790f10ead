// Hashes image files while CRIU is still writing them, so that the manifest
// pass after a dump does not read every byte a second time. Only for files
// that are written front to back and never rewritten: CRIU's pages-N.img
// (the parasite's pages, spliced out in order). Each poll hashes what has
// been appended since the last one; finish() hashes the rest once CRIU has
// exited. The bytes are read back from the page cache, not from disk.
import { createHash, type Hash } from 'node:crypto';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileDigest, feedHash, hashReadBuffers } from './file-durability.js';

/** How often the directory and the growing files are looked at while CRIU writes. */
export const GROWING_HASH_POLL_MS = 20;

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
  /** One pair for every pass (passes never overlap): no new buffers every 20 ms. */
  private readonly buffers = hashReadBuffers(GROWING_HASH_READ_BYTES);
  private timer?: NodeJS.Timeout;
  private pass?: Promise<void>;
  private failed?: unknown;

  constructor(
    private readonly dir: string,
    private readonly match: (name: string) => boolean = (n) => APPEND_ONLY_IMAGE_RE.test(n),
  ) {}

  start(): this {
    this.timer = setInterval(() => {
      if (!this.pass) this.pass = this.poll(false).finally(() => (this.pass = undefined));
    }, GROWING_HASH_POLL_MS);
    return this;
  }

  /** After the writer has exited: hashes what is left and returns each file's digest. */
  async finish(): Promise<Map<string, FileDigest>> {
    this.stopTimer();
    await this.pass;
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
    this.stopTimer();
    await this.pass;
    await this.close();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.fh.close().catch(() => undefined)));
    this.files.clear();
  }

  /** Picks up new files and hashes the bytes appended since the last pass (to EOF when `final`). */
  private async poll(final: boolean): Promise<void> {
    if (this.failed) return;
    try {
      for (const name of await readdir(this.dir)) {
        if (this.files.has(name) || !this.match(name)) continue;
        this.files.set(name, { fh: await open(join(this.dir, name), 'r'), hash: createHash('sha256'), size: 0 });
      }
      for (const f of this.files.values()) {
        // While CRIU writes, stop at the size seen now; at the end, read to EOF.
        const limit = final ? Number.MAX_SAFE_INTEGER : (await f.fh.stat()).size - f.size;
        if (limit > 0) f.size += await feedHash(f.fh, f.hash, f.size, limit, this.buffers);
      }
    } catch (e) {
      this.failed = e; // finish() reports it; the caller then hashes from scratch
    }
  }
}
