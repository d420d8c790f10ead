// The launchers of launched jobs (`mpiexec ... ferry rank-exec`, `srun ... ferry rank-exec`): each
// rank-exec's follow of its rank is a lease on the job (launcher-leases.ts). A lease that lapses while the
// job runs ends it (its launcher lost that rank), unless the rank-exec's process is found stopped or frozen:
// then its launcher was suspended without a SIGTSTP, and so is the job. A launcher's SIGTSTP and SIGCONT
// pass on to the ranks with the job's operations; whether it is suspended is in the catalog
// (jobs.launcher_suspended), so a restarted coordinator still refuses to flush stopped ranks.
import { type LauncherProcessInit, ProcessRunState } from '../gen/proto.js';
import { errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { JOB_RUN_OVER_STATES, type JobRow } from './catalog-types.js';
import type { Coordinator } from './coordinator.js';
import { LauncherLeases, type LapsedLease } from './launcher-leases.js';

const trace = tracer('jobs');

/** How long the agent of a lapsed rank-exec's node has to say whether that process is stopped. */
const LAUNCHER_PROBE_TIMEOUT_MS = 5_000;

/** What the launchers need of the job service (job-service.ts). */
export interface JobLaunchersHooks {
  /** Signals every rank of the job (JobService.signal). */
  signal(jobId: string, signal: string, cause?: string): Promise<void>;
  /** The job is on its way out (a failure or a cancel ends it). */
  isEnding(jobId: string): boolean;
}

export class JobLaunchers {
  private readonly leases: LauncherLeases;

  constructor(
    private readonly c: Coordinator,
    private readonly hooks: JobLaunchersHooks,
  ) {
    this.leases = new LauncherLeases(c.config.launcherLeaseMs, c.now);
    // A launcher a previous coordinator heard suspend and not resume: its ranks are still stopped.
    for (const job of c.catalog.listJobs()) if (job.launcherSuspended && !JOB_RUN_OVER_STATES.has(job.state)) this.leases.suspend(job.id);
  }

  /** The job's follows ended: its launcher leases go, and whatever runs it again runs new processes, not stopped ones. */
  followsEnded(jobId: string): void {
    this.leases.forget(jobId);
    // (late on a full disk: this runs from timers too, where a refusal would end the coordinator)
    if (this.c.catalog.getJob(jobId)?.launcherSuspended) {
      this.c.lateWrites.run(jobId, 'launcher', `that the launcher of job ${jobId} is no longer suspended`, () => this.c.catalog.setLauncherSuspended(jobId, false));
    }
  }

  /**
   * A rank-exec's follow of its ranks, which renews their lease (a follow that went to a running job):
   * a suspended launcher's renewal says it runs again.
   */
  renewed(jobId: string, ranks: readonly number[], process?: LauncherProcessInit): void {
    const job = this.c.catalog.getJob(jobId);
    if (ranks.length > 0 && job && this.needsLaunchers(job) && this.leases.renew(jobId, ranks, process)) this.launcherRunsAgain(jobId, ranks[0]!);
  }

  /** A suspended launcher's rank-exec renews again, with no SIGCONT passed on (launcher-leases.ts). */
  private launcherRunsAgain(jobId: string, rank: number): void {
    this.c.event(
      'launch.continue',
      `job ${jobId}: the ferry rank-exec of rank ${rank} renews its follow again, with no SIGCONT passed on (a thawed cgroup?): ` +
        'the launcher runs again, and so do the ranks',
      { jobId },
    );
    this.suspended(jobId, false);
    this.c.operations.queue(jobId, () => 'continuing its ranks with their launcher', () => this.passStop(jobId, 'SIGCONT'));
  }

  /** Whether a launcher process (ferry rank-exec) holds a lease on the job. */
  hasLeases(jobId: string): boolean {
    return this.leases.has(jobId);
  }

  /**
   * The job's launcher is suspended (SIGTSTP from a rank-exec) or runs again (SIGCONT): its leases wait, or
   * start anew. Recorded in the catalog, so a restarted coordinator knows the ranks are stopped.
   */
  suspended(jobId: string, suspended: boolean, rank?: number): void {
    this.c.catalog.setLauncherSuspended(jobId, suspended);
    if (suspended) this.leases.suspend(jobId, rank);
    else this.leases.resume(jobId);
  }

  /**
   * A launcher's SIGTSTP or SIGCONT, passed on to the ranks in turn with the job's operations. A SIGTSTP
   * whose turn comes once the job is ending (cancelled while a checkpoint held it) is dropped: the ranks
   * must take their SIGTERM, not stop with it pending.
   */
  async passStop(jobId: string, signal: 'SIGTSTP' | 'SIGCONT'): Promise<void> {
    if (signal === 'SIGTSTP' && this.hooks.isEnding(jobId)) {
      this.c.event('launch.suspend', `job ${jobId}: its launcher's SIGTSTP is not passed on: the job is ending`, { jobId });
      return;
    }
    await this.hooks.signal(jobId, signal);
  }

  /** Whether the job's launcher is suspended, its ranks stopped (between a SIGTSTP and its SIGCONT). */
  isSuspended(jobId: string): boolean {
    return this.leases.isSuspended(jobId);
  }

  /** A job that runs (or is being restored) and is not ending: the leases of its launcher processes count. */
  private needsLaunchers(job: JobRow): boolean {
    return (job.state === 'running' || job.state === 'pending') && !this.hooks.isEnding(job.id);
  }

  /** Ends the launched jobs a rank of which lost its launcher process (launcher-leases.ts). */
  sweep(): void {
    const size = (jobId: string) => {
      const job = this.c.catalog.getJob(jobId);
      return job && this.needsLaunchers(job) ? job.worldSize : undefined;
    };
    for (const lapsed of this.leases.sweep(size)) {
      this.launcherLapsed(lapsed).catch((err) => trace(`job ${lapsed.jobId}: lapse of rank ${lapsed.rank}'s launcher: ${errorMessage(err)}`));
    }
  }

  /**
   * A rank-exec's lease lapsed. Stopped or frozen (asked of its node's agent): its launcher was suspended
   * without a SIGTSTP first, and the job is suspended with it. Otherwise the launcher lost it: cancelled.
   */
  private async launcherLapsed({ jobId, rank, silentMs, process }: LapsedLease): Promise<void> {
    const silent = `${Math.round(silentMs / 1000)} s`;
    let found = '';
    if (process?.host && process.pid) {
      try {
        const r = (await this.c.requestAgent(process.host, { process_state: { pid: process.pid, start_ticks: process.start_ticks ?? 0 } }, LAUNCHER_PROBE_TIMEOUT_MS)).process_state_reply!;
        found = `; on ${process.host}: ${r.detail}`;
        if (r.state === ProcessRunState.PROCESS_STOPPED || r.state === ProcessRunState.PROCESS_FROZEN) {
          const job = this.c.catalog.getJob(jobId);
          if (!job || !this.needsLaunchers(job)) return;
          this.c.event(
            'launch.suspend',
            `job ${jobId}: the ferry rank-exec of rank ${rank} has not renewed its follow for ${silent}${found}: its launcher was suspended ` +
              'without a SIGTSTP first (SIGSTOP alone, a frozen cgroup), and so are the ranks; the leases of its rank-execs wait',
            { jobId },
          );
          this.suspended(jobId, true, rank);
          this.c.operations.queue(jobId, () => 'suspending its ranks with their launcher', () => this.passStop(jobId, 'SIGTSTP'));
          return;
        }
      } catch (err) {
        found = `; its host ${process.host} did not say how it is (${errorMessage(err)})`;
      }
    }
    const job = this.c.catalog.getJob(jobId);
    if (!job || !this.needsLaunchers(job)) return;
    this.c.event('launch.lost', `job ${jobId}: the ferry rank-exec of rank ${rank} has not renewed its follow for ${silent} (killed outright, or cut off from the coordinator)${found}: the job is cancelled`, { jobId });
    await this.hooks.signal(jobId, 'SIGTERM', `as its launcher lost rank ${rank} (no follow from that rank's ferry rank-exec for ${silent})`);
  }
}
