// sha256 of whole files on worker threads. An agent hashes every byte of its
// ranks' images (STORE, a restore's verification); on its main thread that
// is one core at about 1.45 GB/s here, for every rank of the node at once.
// Each worker reads its file with blocking reads (no libuv pool thread, which
// the fsyncs of the same files hold) and hashes it; the main thread only
// hands out paths.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FileDigest } from './file-durability.js';

/** Files smaller than this are hashed on the main thread: a round trip to a worker costs more. */
export const OFF_THREAD_MIN_BYTES = 1 << 20;
/** Workers at most (one file each at a time). */
export const HASH_WORKERS_MAX = 4;

// Plain CommonJS, evaluated by the worker: no separate file to find in dist/ or in the sources the tests run.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const buf = Buffer.allocUnsafe(4 << 20);
parentPort.on('message', ({ id, path }) => {
  let fd;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, size);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    parentPort.postMessage({ id, sha256: hash.digest(), size });
  } catch (e) {
    parentPort.postMessage({ id, error: e && e.message ? e.message : String(e), code: e && e.code });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

interface Job {
  id: number;
  path: string;
  resolve: (d: FileDigest) => void;
  reject: (e: Error) => void;
}

interface Reply {
  id: number;
  sha256?: Uint8Array;
  size?: number;
  error?: string;
  code?: string;
}

class HashWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly waiting: Job[] = [];
  private started = 0;
  private nextId = 1;

  constructor(private readonly size: number) {}

  hash(path: string): Promise<FileDigest> {
    return new Promise<FileDigest>((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, path, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const w = this.idle.pop() ?? (this.started < this.size ? this.spawn() : undefined);
      if (!w) return;
      const job = this.waiting.shift()!;
      this.busy.set(w, job);
      w.ref(); // a file being hashed keeps the process alive; an idle worker does not
      w.postMessage({ id: job.id, path: job.path });
    }
  }

  private spawn(): Worker {
    this.started++;
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (m: Reply) => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      w.unref();
      this.idle.push(w);
      if (job && job.id === m.id) {
        if (m.error !== undefined) job.reject(Object.assign(new Error(m.error), { code: m.code }));
        else job.resolve({ sha256: Buffer.from(m.sha256!), size: m.size! });
      }
      this.dispatch();
    });
    // A worker that dies (it should not) fails its file; the next file gets a new worker.
    const lost = (why: string) => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.started--;
      job?.reject(new Error(`hashing ${job.path}: worker thread ${why}`));
      this.dispatch();
    };
    w.on('error', (e) => lost(`failed: ${e.message}`));
    w.on('exit', (code) => {
      if (this.busy.has(w) || this.idle.includes(w)) lost(`exited with code ${code}`);
    });
    w.unref();
    return w;
  }
}

let pool: HashWorkerPool | undefined;

/** sha256 and length of the file at `path`, read and hashed on a worker thread. */
export function hashFileOffThread(path: string): Promise<FileDigest> {
  pool ??= new HashWorkerPool(Math.max(1, Math.min(HASH_WORKERS_MAX, availableParallelism())));
  return pool.hash(path);
}
