// One operation at a time per job: a checkpoint, a restart or a migration.
// An operator's second one is refused with what is running, never queued.
// The coordinator's own follow-up work (waking ranks an operation left
// flushed) waits for its turn instead, and holds the job while it runs, so no
// checkpoint flushes the job under it.
import { ErrorCode } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';

const trace = tracer('coordinator');

interface Waiting {
  describe: () => string;
  work: () => Promise<void>;
  /** Work an operator's operation waits for (briefly) instead of being refused: copies of images. */
  background: boolean;
}

export class JobOperations {
  private readonly running = new Map<string, () => string>();
  /** Jobs whose running work is background work, with what its end resolves. */
  private readonly background = new Map<string, { ended: Promise<void>; end: () => void }>();
  private readonly waiting = new Map<string, Waiting[]>();
  /** Set while the coordinator shuts down: no operation starts any more. */
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  /** Claims the job; `describe` says what runs, for whoever is refused. Returns the release. */
  begin(jobId: string, describe: () => string): () => void {
    if (this.closing) throw new FerryError(ErrorCode.UNAVAILABLE, `the coordinator is shutting down: nothing new starts on job ${jobId}`);
    const current = this.running.get(jobId);
    if (current) throw new FerryError(ErrorCode.BUSY, `job ${jobId} is busy: ${current()}; try again when it is done`);
    this.running.set(jobId, describe);
    return () => {
      if (this.running.get(jobId) !== describe) return;
      this.running.delete(jobId);
      this.next(jobId);
      if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  /**
   * Shutting down: refuses new operations (and drops queued work, which the
   * next coordinator redoes from what the agents report) and resolves once the
   * running ones have ended.
   */
  close(): Promise<void> {
    this.closing = true;
    this.waiting.clear();
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** What runs now, for a shutdown that stops waiting. */
  describeRunning(): string[] {
    return [...this.running].map(([jobId, describe]) => `job ${jobId}: ${describe()}`);
  }

  /**
   * For an operator's operation: waits, up to `maxWaitMs`, while the job's
   * running or queued work is only background work (queueBackground), so that
   * a restart right after a checkpoint is not refused for the image copies the
   * checkpoint queued. begin() then claims the job or says what holds it.
   */
  async afterBackground(jobId: string, maxWaitMs: number): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      const bg = this.background.get(jobId);
      const queuedBg = (this.waiting.get(jobId) ?? []).every((w) => w.background);
      if (!bg || !queuedBg) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([bg.ended, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  }

  /** Runs `work` holding the job once nothing else does: now, or when what runs ends. */
  queue(jobId: string, describe: () => string, work: () => Promise<void>): void {
    this.enqueue(jobId, { describe, work, background: false });
  }

  /** queue() for background work: an operator's operation waits a little for it (afterBackground). */
  queueBackground(jobId: string, describe: () => string, work: () => Promise<void>): void {
    this.enqueue(jobId, { describe, work, background: true });
  }

  private enqueue(jobId: string, w: Waiting): void {
    const q = this.waiting.get(jobId) ?? [];
    q.push(w);
    this.waiting.set(jobId, q);
    if (!this.running.has(jobId)) this.next(jobId);
  }

  busy(jobId: string): boolean {
    return this.running.has(jobId);
  }

  private next(jobId: string): void {
    if (this.closing) return;
    const q = this.waiting.get(jobId);
    const w = q?.shift();
    if (!w) return;
    if (q!.length === 0) this.waiting.delete(jobId);
    const release = this.begin(jobId, w.describe);
    let end = () => {};
    if (w.background) {
      const ended = new Promise<void>((r) => (end = r));
      this.background.set(jobId, { ended, end });
    }
    w.work()
      .catch((err) => trace(`queued work on job ${jobId} failed: ${errorMessage(err)}`))
      .finally(() => {
        if (w.background) this.background.delete(jobId);
        release();
        end();
      });
  }
}
