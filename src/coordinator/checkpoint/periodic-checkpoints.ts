// Periodic checkpoints: each running job with an interval gets a checkpoint
// every interval, measured from the end of the previous attempt, or from the
// last commit when a checkpoint committed since (the operator's): the job is
// never longer than an interval without one, and not checkpointed twice in a
// row for nothing. A turn that finds the job busy (the operator's checkpoint,
// a migration, image copies), or its ranks stopped with their suspended
// launcher (launcher-leases.ts), is taken as soon as the job is free, not an
// interval later: with an hourly interval, a migration at the wrong moment
// would otherwise leave the job two hours without a checkpoint. A job still
// starting or being restarted (pending) waits a whole interval: its interval
// starts over once it runs. The interval is in the catalog, so a restarted
// coordinator resumes it.
import { ErrorCode } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import type { Coordinator } from '../coordinator.js';

const trace = tracer('checkpoint');

/** The shortest interval accepted: a checkpoint stops the job for a moment each time. */
export const MIN_CHECKPOINT_INTERVAL_MS = 1_000;

/** A run of failed periodic checkpoints is told to the job's followers at its 1st, and every this many after. */
export const NOTICE_EVERY_FAILURES = 10;

/** How often a turn that found its job busy looks again. */
export const BUSY_RETRY_MS = 1_000;

export class PeriodicCheckpoints {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Periodic checkpoints that failed in a row, per job. */
  private readonly failures = new Map<string, number>();
  /**
   * Set by stop(): a checkpoint the coordinator's stop cut short ends after
   * it, and its tick then touches neither the catalog (closed by then) nor
   * the timers.
   */
  private stopped = false;
  /** Jobs whose tick runs: its checkpoint may not have begun yet (it waits for the job's image copies first). */
  private readonly ticking = new Set<string>();

  constructor(private readonly c: Coordinator) {}

  /** Schedules every running job that has an interval (at coordinator start). */
  resumeAll(): void {
    for (const job of this.c.catalog.listJobs({ all: false })) {
      if (job.checkpointEveryMs && (job.state === 'running' || job.state === 'pending')) this.schedule(job.id, job.checkpointEveryMs);
    }
  }

  /** Sets a job's interval (0: off) and (re)schedules it. */
  set(jobId: string, everyMs: number): void {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    if (everyMs !== 0 && everyMs < MIN_CHECKPOINT_INTERVAL_MS) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `a checkpoint interval must be at least ${MIN_CHECKPOINT_INTERVAL_MS} ms, got ${everyMs} ms`);
    }
    this.c.catalog.setCheckpointEvery(jobId, everyMs || null);
    this.cancel(jobId);
    if (everyMs) this.schedule(jobId, everyMs);
    this.c.event('checkpoint.interval', `job ${jobId}: ${everyMs ? `checkpoint every ${everyMs} ms` : 'periodic checkpoints off'}`, { jobId });
  }

  /** The job runs again (restarted): its interval, if it has one, starts over. */
  resume(jobId: string): void {
    const job = this.c.catalog.getJob(jobId);
    if (job?.checkpointEveryMs && !this.timers.has(jobId)) this.schedule(jobId, job.checkpointEveryMs);
  }

  cancel(jobId: string): void {
    const t = this.timers.get(jobId);
    if (t) clearTimeout(t);
    this.timers.delete(jobId);
    this.failures.delete(jobId);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(jobId: string, everyMs: number): void {
    const timer = setTimeout(() => void this.tick(jobId), everyMs);
    timer.unref?.();
    this.timers.set(jobId, timer);
  }

  /** Whether a periodic checkpoint of the job is under way, from its tick on (before its epoch begins too). */
  isTicking(jobId: string): boolean {
    return this.ticking.has(jobId);
  }

  private async tick(jobId: string): Promise<void> {
    this.ticking.add(jobId);
    try {
      await this.tickOnce(jobId);
    } finally {
      this.ticking.delete(jobId);
    }
  }

  private async tickOnce(jobId: string): Promise<void> {
    this.timers.delete(jobId);
    if (this.stopped) return;
    const job = this.c.catalog.getJob(jobId);
    if (!job || !job.checkpointEveryMs) return;
    if (job.state !== 'running' && job.state !== 'pending') return; // ended or stopped: no more ticks
    if (job.state === 'running' && (this.c.operations.busy(jobId) || this.c.jobs.launchers.isSuspended(jobId))) {
      this.schedule(jobId, Math.min(BUSY_RETRY_MS, job.checkpointEveryMs));
      return;
    }
    const turnMs = (this.c.catalog.lastCommittedEpoch(jobId)?.committedMs ?? 0) + job.checkpointEveryMs;
    if (job.state === 'running' && turnMs > this.c.now()) {
      trace(`periodic checkpoint of ${jobId}: a checkpoint committed less than an interval ago; the next in ${turnMs - this.c.now()} ms`);
      this.schedule(jobId, turnMs - this.c.now());
      return;
    }
    if (job.state === 'running') {
      try {
        const r = await this.c.checkpoints.checkpoint(jobId, { stop: false });
        if (this.stopped) return;
        trace(`periodic checkpoint of ${jobId}: epoch ${r.epoch?.epoch} committed`);
        const failed = this.failures.get(jobId) ?? 0;
        this.failures.delete(jobId);
        if (failed > 0) this.c.jobs.output.notify(jobId, `periodic checkpoint epoch ${r.epoch?.epoch} committed, after ${failed} that failed`);
      } catch (err) {
        if (this.stopped) return;
        const failed = (this.failures.get(jobId) ?? 0) + 1;
        this.failures.set(jobId, failed);
        const inARow = failed > 1 ? ` (${failed} in a row)` : '';
        this.c.event('checkpoint.periodic-failed', `job ${jobId}: periodic checkpoint failed${inARow}: ${errorMessage(err)}`, { jobId });
        if (failed === 1 || failed % NOTICE_EVERY_FAILURES === 0) this.c.jobs.output.notify(jobId, `periodic checkpoint failed${inARow}: ${errorMessage(err)}`);
      }
    }
    const now = this.c.catalog.getJob(jobId);
    if (now?.checkpointEveryMs && (now.state === 'running' || now.state === 'pending')) this.schedule(jobId, now.checkpointEveryMs);
  }
}
