// Holding a job's output back at its agents while a follower is behind. The
// coordinator queues what a follower has not taken yet (follower-link.ts);
// past OUTPUT_PAUSE_AT_BYTES it asks the job's agents to stop reading the
// ranks' log files for a while, renewed every second, until the follower has
// caught up to OUTPUT_RESUME_AT_BYTES. The ranks write on into their files
// (nothing waits on them); the output goes out late, not lost, and the
// coordinator's memory stays bounded. A pause lapses by itself at the agent, so
// a coordinator that went away holds nothing back.
export const OUTPUT_PAUSE_AT_BYTES = 32 * 1024 * 1024;
export const OUTPUT_RESUME_AT_BYTES = 8 * 1024 * 1024;
/** How long one pause lasts at an agent; renewed every second while it is needed. */
export const OUTPUT_PAUSE_MS = 3_000;

export class OutputFlow {
  private readonly paused = new Set<string>();

  /** `tell` asks every host of the job to hold its output back for `pauseMs` (0: go on). */
  constructor(private readonly tell: (jobId: string, pauseMs: number) => void) {}

  /** The most output waiting at the coordinator for one follower of the job changed. */
  update(jobId: string, waitingBytes: number): void {
    if (!this.paused.has(jobId) && waitingBytes > OUTPUT_PAUSE_AT_BYTES) {
      this.paused.add(jobId);
      this.tell(jobId, OUTPUT_PAUSE_MS);
    } else if (this.paused.has(jobId) && waitingBytes <= OUTPUT_RESUME_AT_BYTES) {
      this.paused.delete(jobId);
      this.tell(jobId, 0);
    }
  }

  /** Every second: the pauses still needed are renewed, the others ended. */
  renew(waitingOf: (jobId: string) => number): void {
    for (const jobId of [...this.paused]) {
      if (waitingOf(jobId) <= OUTPUT_RESUME_AT_BYTES) this.update(jobId, 0);
      else this.tell(jobId, OUTPUT_PAUSE_MS);
    }
  }

  isPaused(jobId: string): boolean {
    return this.paused.has(jobId);
  }

  /** The job ended: its ranks' files were read to their end. */
  forget(jobId: string): void {
    this.paused.delete(jobId);
  }
}
