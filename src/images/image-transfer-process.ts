// The agent's handle on its image transfer process (image-transfer-worker.ts,
// which says why it is a process): starts it, hands it fetches, and restarts
// it on the same address if it dies. A fetch in flight when it dies fails with
// an error naming the process and how it ended (the round that asked for the
// fetch fails, as for any failed fetch), never hangs.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Backoff, sleep } from '../common/backoff.js';
import { FerryError } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { ErrorCode } from '../gen/proto.js';
import { packageRoot } from '../protocol/proto-root.js';
import type { ClusterKey } from '../transport/cluster-key.js';
import type { FetchImageResult } from './image-fetcher.js';
import type { FromTransferProcess, ToTransferProcess, TransferError, TransferFetchOptions, TransferWarmup } from './image-transfer-messages.js';
import { imageLabel } from './image-paths.js';

const trace = tracer('images');

/** How long the process may take to start and bind its server. */
export const TRANSFER_PROCESS_START_TIMEOUT_MS = 30_000;
/** How long a stop waits for the process to end before it is killed. */
export const TRANSFER_PROCESS_STOP_TIMEOUT_MS = 5_000;

export interface ImageTransferProcessOptions {
  /** Where the image server listens (tcp://ADDR:PORT, port 0 for any). */
  listen: string;
  /** The agent's images directory, served to other agents. */
  imagesRoot: string;
  /** The cluster key, or null for none. */
  key: ClusterKey | null;
  /** The compiled worker script (default dist/src/images/image-transfer-worker.js). */
  workerPath?: string;
}

interface PendingFetch {
  what: string;
  resolve: (r: FetchImageResult) => void;
  reject: (e: Error) => void;
}

export function transferWorkerPath(): string {
  return join(packageRoot(), 'dist', 'src', 'images', 'image-transfer-worker.js');
}

export class ImageTransferProcess {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, PendingFetch>();
  private nextId = 1;
  private closing = false;
  private restarting: Promise<void> | undefined;
  private startCount = 0;
  private warmup: Promise<TransferWarmup> = Promise.resolve({ messages: 0, ms: 0, skipped: true });

  private constructor(
    private readonly options: ImageTransferProcessOptions,
    /** The image server's address, with its real port: a restarted process listens there again. */
    readonly address: string,
  ) {}

  static async start(options: ImageTransferProcessOptions): Promise<ImageTransferProcess> {
    const { child, address } = await launch(options, options.listen);
    const p = new ImageTransferProcess(options, address);
    p.adopt(child);
    return p;
  }

  /** Times the process was started (1 + restarts). */
  get starts(): number {
    return this.startCount;
  }

  /** The warm-up of the process started last: settles once it is done, or with an error if the process ended first. */
  get warmed(): Promise<TransferWarmup> {
    return this.warmup;
  }

  /** The process's pid (undefined while it restarts). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Fetches one rank's image in the transfer process (fetchImageDir there). */
  fetch(options: TransferFetchOptions): Promise<FetchImageResult> {
    const what = `the fetch of job ${options.jobId} ${imageLabel(options)} from ${options.from}`;
    const child = this.child;
    if (!child || this.closing) {
      return Promise.reject(new FerryError(ErrorCode.UNAVAILABLE, `${what}: the image transfer process is ${this.closing ? 'stopped' : 'restarting'}`));
    }
    const id = this.nextId++;
    return new Promise<FetchImageResult>((resolve, reject) => {
      this.pending.set(id, { what, resolve, reject });
      child.send({ kind: 'fetch', id, options } satisfies ToTransferProcess);
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.restarting?.catch(() => undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ kind: 'stop' } satisfies ToTransferProcess);
    const timer = setTimeout(() => child.kill('SIGKILL'), TRANSFER_PROCESS_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private adopt(child: ChildProcess): void {
    this.startCount++;
    this.child = child;
    // A send to a process that just died: its fetches fail at its exit, below.
    child.on('error', (err) => trace(`image transfer process (pid ${child.pid}): ${err.message}`));
    let warmed!: (w: TransferWarmup) => void;
    this.warmup = new Promise<TransferWarmup>((resolve) => (warmed = resolve));
    child.on('message', (m: FromTransferProcess) => {
      if (m.kind === 'warmed') {
        const { kind: _, ...w } = m;
        if (w.error) process.stderr.write(`ferry agent: the image transfer process (pid ${child.pid}) could not warm its memory (${w.error}); the first transfer of this host will be slower\n`);
        else trace(`image transfer process (pid ${child.pid}): ${w.skipped ? 'no warm-up (no malloc tuning)' : `warmed with ${w.messages} messages in ${w.ms.toFixed(0)} ms`}`);
        warmed(w);
        return;
      }
      if (m.kind !== 'fetched' && m.kind !== 'fetch-failed') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.kind === 'fetched') p.resolve(m.result);
      else p.reject(toFerryError(m.error));
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      warmed({ messages: 0, ms: 0, error: `the process ${how} first` });
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new FerryError(ErrorCode.UNAVAILABLE, `${p.what}: the image transfer process (pid ${child.pid}) ${how}`));
      }
      if (this.closing) return;
      process.stderr.write(`ferry agent: the image transfer process (pid ${child.pid}) ${how}; starting it again on ${this.address}\n`);
      this.restarting = this.restart().finally(() => (this.restarting = undefined));
    });
  }

  /** Starts the process again on the same address, until it works or the agent stops. */
  private async restart(): Promise<void> {
    const backoff = new Backoff();
    while (!this.closing) {
      try {
        const { child } = await launch(this.options, this.address);
        if (this.closing) {
          child.kill('SIGKILL');
          return;
        }
        this.adopt(child);
        trace(`image transfer process started again (pid ${child.pid}) on ${this.address}`);
        return;
      } catch (err) {
        process.stderr.write(`ferry agent: ${(err as Error).message}; trying again\n`);
        await sleep(backoff.next());
      }
    }
  }
}

/** Forks the worker and waits until its server listens. */
async function launch(options: ImageTransferProcessOptions, listen: string): Promise<{ child: ChildProcess; address: string }> {
  const child = fork(options.workerPath ?? transferWorkerPath(), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // (gc(): its warm-up frees the memory it took at once, receive-warmup.ts)
    execArgv: ['--expose-gc'],
  });
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new FerryError(ErrorCode.TIMEOUT, `the image transfer process did not start within ${TRANSFER_PROCESS_START_TIMEOUT_MS} ms`)),
        TRANSFER_PROCESS_START_TIMEOUT_MS,
      );
      const onExit = (code: number | null, signal: string | null) =>
        reject(new FerryError(ErrorCode.UNAVAILABLE, `the image transfer process ended while starting (${signal ?? `status ${code}`})`));
      child.once('exit', onExit);
      child.once('error', reject);
      child.on('message', function onMessage(m: FromTransferProcess) {
        if (m.kind !== 'started' && m.kind !== 'start-failed') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (m.kind === 'started') resolve(m.address);
        else reject(toFerryError(m.error));
      });
      child.send({ kind: 'start', listen, imagesRoot: options.imagesRoot, key: options.key } satisfies ToTransferProcess);
    });
    return { child, address };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

function toFerryError(e: TransferError): FerryError {
  return new FerryError(e.code, e.message);
}
