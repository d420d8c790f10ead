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
}

export class JobOperations {
  private readonly running = new Map<string, () => string>();
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

  /** Runs `work` holding the job once nothing else does: now, or when what runs ends. */
  queue(jobId: string, describe: () => string, work: () => Promise<void>): void {
    const q = this.waiting.get(jobId) ?? [];
    q.push({ describe, work });
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
    w.work()
      .catch((err) => trace(`queued work on job ${jobId} failed: ${errorMessage(err)}`))
      .finally(release);
  }
}
