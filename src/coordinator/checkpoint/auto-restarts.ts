// Automatic restarts: a job that fails because ranks were lost with their host
// (the host stayed down past its rejoin grace, or its agent came back without
// them) is restarted from its last committed epoch, as `ferry restart JOB`
// would, as many times as the job allows (`ferry run --auto-restart N`): the
// ranks whose hosts are up stay there, the lost ones go to live hosts. A rank that fails on its own (a non-zero
// exit, a signal) is the program's failure: restarting would fail again.
//
// Each attempt uses one up, durably, before it starts. The job's followers
// (`ferry run`, `ferry attach`, `rank-exec`) stay attached through it and are
// told in a JobNotice; if the restart fails they get the job's end, failed,
// with the restart's reason added. The catalog marks the restart due from the
// failure until it starts, so a coordinator that dies in between starts it
// when it is back, once the agents had time to register (resumeDue).
import { ErrorCode } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import type { JobRow } from '../catalog-types.js';
import type { Coordinator } from '../coordinator.js';

/** How many of a restart's notes (files cut back) its followers get one by one. */
const NOTES_SHOWN = 8;

export class AutoRestarts {
  /** Jobs whose automatic restart is queued or running. */
  private readonly pending = new Set<string>();
  /** Queued restarts an operator called off (ferry cancel, Ctrl-C on ferry run), with why. */
  private readonly cancelled = new Map<string, string>();

  private resumeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly c: Coordinator) {}

  /**
   * At coordinator start: restarts a previous coordinator marked due and did
   * not start. They wait `afterMs` (a heartbeat timeout: the agents that are
   * up have registered by then), their followers meanwhile kept.
   */
  resumeDue(afterMs: number): void {
    const due = this.c.catalog.listJobs({ all: true }).filter((j) => j.autoRestartDue && j.state === 'failed');
    if (due.length === 0) return;
    for (const job of due) this.pending.add(job.id);
    this.resumeTimer = setTimeout(() => {
      for (const job of due) this.queue(job.id, job.detail ?? '');
    }, afterMs);
    this.resumeTimer.unref?.();
  }

  stop(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
  }

  /**
   * Whether a job that is ending failed because ranks were lost with their host
   * gets an automatic restart: undefined if so, else why not (for the job's
   * detail), or '' when the job asked for none.
   */
  check(job: JobRow): string | undefined {
    if (job.autoRestarts === 0) return '';
    if (!this.c.catalog.lastCommittedEpoch(job.id)) return 'no automatic restart: the job has no committed checkpoint';
    return undefined;
  }

  /** Queues the restart of a job that ended failed (`failure`) and passed check(). */
  start(jobId: string, failure: string): void {
    this.c.catalog.setAutoRestartDue(jobId, true);
    this.pending.add(jobId);
    this.queue(jobId, failure);
  }

  private queue(jobId: string, failure: string): void {
    this.c.operations.queue(jobId, () => 'an automatic restart is running', () => this.run(jobId, failure));
  }

  /** Sets how many automatic restarts the job has left (ferry checkpoint JOB --auto-restart N; 0: off). */
  set(jobId: string, n: number): void {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    this.c.catalog.setAutoRestarts(jobId, n);
    this.c.event('job.auto-restarts', `job ${jobId}: ${n ? `restarted automatically up to ${n} times if it loses a host` : 'no automatic restarts'}`, { jobId });
  }

  /** Calls off a queued restart of the job, if there is one (one already running goes on). */
  cancel(jobId: string, why: string): void {
    if (this.pending.has(jobId)) this.cancelled.set(jobId, why);
  }

  /** A restart of this job is queued or running: its followers wait for it. */
  has(jobId: string): boolean {
    return this.pending.has(jobId);
  }

  private async run(jobId: string, failure: string): Promise<void> {
    try {
      const job = this.c.catalog.getJob(jobId);
      const epoch = this.c.catalog.lastCommittedEpoch(jobId);
      const cancelled = this.cancelled.get(jobId);
      if (job?.autoRestartDue && (cancelled || job.state !== 'failed' || job.autoRestarts === 0 || !epoch)) this.c.catalog.setAutoRestartDue(jobId, false);
      if (cancelled) {
        this.pending.delete(jobId);
        this.c.event('job.auto-restart-cancelled', `job ${jobId}: no automatic restart: ${cancelled}`, { jobId });
        this.c.jobs.autoRestartEnded(jobId, `${failure}; no automatic restart: ${cancelled}`);
        return;
      }
      // An operator may have restarted or deleted the job, or turned its restarts off, in the meantime.
      if (!job || job.state !== 'failed' || job.autoRestarts === 0 || !epoch) {
        this.pending.delete(jobId);
        const why = job?.autoRestarts === 0 ? 'automatic restarts were turned off' : 'the job changed before it could start';
        this.c.jobs.autoRestartEnded(jobId, `${failure}; no automatic restart: ${why}`);
        return;
      }
      const left = this.c.catalog.useAutoRestart(jobId);
      // The newest epoch whose images can be read now: the last one may be out of reach with its host
      // (its copies to other hosts not made yet, say) while the one before it is not.
      const reachable = this.c.moves.reachableEpoch(jobId);
      const from = reachable?.epoch ?? epoch.epoch;
      const passed = reachable?.passed.map((p) => `epoch ${p.epoch} cannot be read: ${p.why}`).join('; ');
      const where = job.hosts ? `the live ones of its hosts ${job.hosts.join(',')}` : 'the live hosts';
      const what = `restarting it from epoch ${from}${passed ? ` (${passed})` : ''} on ${where} (automatic restarts left: ${left})`;
      this.c.event('job.auto-restart', `job ${jobId}: ${failure}; ${what}`, { jobId });
      this.c.jobs.output.notify(jobId, `${failure}; ${what}`);
      try {
        const r = await this.c.moves.restart(jobId, { held: true, keepInPlace: true, epoch: from, hideRepeatedOutput: true });
        const hosts = [...new Set(r.moves?.map((m) => m.to_host) ?? [])].join(',');
        this.c.event('job.auto-restarted', `job ${jobId}: restarted from epoch ${from} on ${hosts}`, { jobId });
        // The ranks run again from the epoch's state: what they printed after it they print again (a rollback),
        // and it is not shown twice when the epoch's output marks are this coordinator's (output-replay.ts).
        this.c.jobs.output.notify(
          jobId,
          `restarted from epoch ${from} on ${hosts}; ` +
            (r.output_replay_known
              ? `the output the ranks write again up to where they were (${r.output_replay_hidden_bytes} bytes) is not shown twice`
              : `output the ranks wrote after epoch ${from} is written again (this coordinator did not see epoch ${from} taken)`),
        );
        // The files the ranks wrote after the epoch, cut back: one line each up to a few, then how many more.
        const notes = r.notes ?? [];
        for (const n of notes.slice(0, NOTES_SHOWN)) this.c.jobs.output.notify(jobId, n);
        if (notes.length > NOTES_SHOWN) this.c.jobs.output.notify(jobId, `and ${notes.length - NOTES_SHOWN} more files cut back (ferry events --job ${jobId} lists them)`);
      } catch (err) {
        const why = `the automatic restart from epoch ${from} failed: ${errorMessage(err)}`;
        this.c.event('job.auto-restart-failed', `job ${jobId}: ${why}`, { jobId });
        this.pending.delete(jobId);
        this.c.jobs.autoRestartEnded(jobId, `${failure}; ${why}`);
      }
    } finally {
      this.pending.delete(jobId);
      this.cancelled.delete(jobId);
    }
  }
}
