// The ferry rank-execs of a launched job (launched-jobs.ts) renew their follow
// of it every FOLLOW_RENEW_MS, and those renewals are a lease. A rank-exec
// killed outright (SIGKILL: Hydra ending the other ranks of a launch, the
// OOM kill of a Slurm step) cannot pass a signal on, and the ranks
// the agents started for its launch would run on outside the launcher, its
// allocation over. So once the coordinator has heard one rank-exec of a job,
// it expects one renewing for every rank of it; a rank whose follow lapses
// for longer than the lease ends the job (JobLaunchers.sweep, job-launchers.ts).
//
// A launcher suspended by its batch system (Slurm's suspend and gang
// scheduling send SIGTSTP, then SIGSTOP two seconds later) cannot renew either:
// a rank-exec that gets SIGTSTP says so first, and the job's leases wait until
// one says SIGCONT. The ranks are suspended with it: their ferry-init stops
// them at SIGTSTP and continues them at SIGCONT.
//
// A launcher suspended without a SIGTSTP first (SIGSTOP alone, as PBS and
// Torque suspend a job; a frozen cgroup) cannot say so: its renewals just
// stop. So before a lapse ends the job, the coordinator asks the agent on the
// lapsed rank-exec's node how that process is (LauncherProcess, which every
// renewal names; src/agent/process-state.ts). Stopped or frozen: the job is
// suspended as for a SIGTSTP, until the rank-exec's SIGCONT. A thawed cgroup
// sends no SIGCONT, and a restarted coordinator may have missed one: a
// renewal from a rank-exec that was suspended, coming once it must have
// stopped (SUSPENDED_RENEWAL_RESUMES_MS after the suspension; a rank-exec
// stops itself within a second of its SIGTSTP), also says the launcher runs
// again. Gone, running but silent (cut off from the coordinator), or no
// answer: the job is cancelled.
//
// Leases live in memory only: a restarted coordinator arms them again when
// the first rank-exec of the job renews (within FOLLOW_RENEW_MS), so only a
// launch whose every rank-exec died while no coordinator ran goes unnoticed.
// A suspension is also in the catalog (JobRow.launcherSuspended), from which
// JobService gives it back to a restarted coordinator's leases.

import type { LauncherProcessInit } from '../gen/proto.js';

/** How long a rank's launcher process may go without renewing its follow. */
export const LAUNCHER_LEASE_MS = 30_000;
/** From this long after a suspension began, a suspended rank-exec's renewal means it runs again. */
export const SUSPENDED_RENEWAL_RESUMES_MS = 5_000;

interface Suspension {
  sinceMs: number;
  /** The ranks whose rank-exec was suspended (SIGTSTP, found stopped); undefined: unknown (any). */
  ranks?: Set<number>;
}

interface JobLeases {
  /** When the job's leases were armed: the start of the lease of a rank not heard from yet. */
  armedMs: number;
  /** Last renewal per rank. */
  renewedMs: Map<number, number>;
  /** The launcher process of each rank, as its renewals name it. */
  processes: Map<number, LauncherProcessInit>;
}

/** A rank whose launcher process stopped renewing. */
export interface LapsedLease {
  jobId: string;
  rank: number;
  /** How long ago it (or, for a rank never heard from, the job's first rank-exec) last renewed. */
  silentMs: number;
  /** Its launcher process, if a renewal named it. */
  process?: LauncherProcessInit;
}

export class LauncherLeases {
  private readonly jobs = new Map<string, JobLeases>();
  /** Jobs whose launcher is suspended: their leases wait. */
  private readonly suspended = new Map<string, Suspension>();
  private lastSweepMs: number;

  constructor(
    private readonly leaseMs: number,
    private readonly now: () => number,
  ) {
    this.lastSweepMs = now();
  }

  /**
   * A launcher process renewed its follow of `ranks` of the job. True when it
   * is one that was suspended, renewing once it must have stopped: the
   * launcher runs again (a thawed cgroup, a SIGCONT this coordinator missed).
   */
  renew(jobId: string, ranks: readonly number[], process?: LauncherProcessInit): boolean {
    const now = this.now();
    let job = this.jobs.get(jobId);
    if (!job) this.jobs.set(jobId, (job = { armedMs: now, renewedMs: new Map(), processes: new Map() }));
    for (const rank of ranks) {
      job.renewedMs.set(rank, now);
      if (process?.host && process.pid) job.processes.set(rank, process);
    }
    const s = this.suspended.get(jobId);
    return !!s && now - s.sinceMs >= SUSPENDED_RENEWAL_RESUMES_MS && (!s.ranks || ranks.some((r) => s.ranks!.has(r)));
  }

  /** The job stopped or ended: its launcher processes stop following it (or exit), as they should. */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
    this.suspended.delete(jobId);
  }

  /**
   * The job's launcher is being suspended (the rank-exec of `rank` passed on
   * SIGTSTP, or was found stopped; no rank: restored from the catalog): no
   * lease of it lapses until resume().
   */
  suspend(jobId: string, rank?: number): void {
    const s = this.suspended.get(jobId);
    if (s && rank !== undefined) s.ranks?.add(rank);
    else if (!s) this.suspended.set(jobId, { sinceMs: this.now(), ...(rank !== undefined ? { ranks: new Set([rank]) } : {}) });
  }

  /** Whether the job's launcher is suspended (between its SIGTSTP and its SIGCONT). */
  isSuspended(jobId: string): boolean {
    return this.suspended.has(jobId);
  }

  /** The job's launcher runs again (SIGCONT): every lease of it starts anew now. */
  resume(jobId: string): void {
    this.suspended.delete(jobId);
    const job = this.jobs.get(jobId);
    if (!job) return;
    const now = this.now();
    job.armedMs = now;
    for (const rank of job.renewedMs.keys()) job.renewedMs.set(rank, now);
  }

  /** Whether any launcher process follows the job (for tests and `ferry job`). */
  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /**
   * The ranks whose lease lapsed, at most one per job (that job's leases are
   * forgotten: it is ending). `worldSize` gives each job's number of ranks, or
   * undefined for a job that no longer runs, whose leases are forgotten. A
   * sweep that comes late (the coordinator's event loop was stalled, so the
   * renewals wait unread in its socket) renews every lease instead: the stall
   * was the coordinator's, not the launchers'.
   */
  sweep(worldSize: (jobId: string) => number | undefined): LapsedLease[] {
    const now = this.now();
    const late = now - this.lastSweepMs > this.leaseMs / 3;
    this.lastSweepMs = now;
    const lapsed: LapsedLease[] = [];
    for (const [jobId, job] of this.jobs) {
      const size = worldSize(jobId);
      if (size === undefined) {
        this.forget(jobId);
        continue;
      }
      if (late || this.suspended.has(jobId)) {
        job.armedMs = now;
        for (const rank of job.renewedMs.keys()) job.renewedMs.set(rank, now);
        continue;
      }
      for (let rank = 0; rank < size; rank++) {
        const silentMs = now - (job.renewedMs.get(rank) ?? job.armedMs);
        if (silentMs > this.leaseMs) {
          const process = job.processes.get(rank);
          lapsed.push({ jobId, rank, silentMs, ...(process ? { process } : {}) });
          this.jobs.delete(jobId);
          break;
        }
      }
    }
    return lapsed;
  }
}
