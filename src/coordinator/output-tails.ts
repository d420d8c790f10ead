// Ranks whose output goes on after their exit. A rank that ends while its
// job's output is held back at its agent (a follower behind: output-flow.ts)
// leaves the rest of its log files to be read after its exit, at the pace the
// followers take it (agent/output-tailer.ts): its exit says `output_follows`,
// and a RankOutput with `last` ends that tail. The job ends at once (catalog,
// hosts, events); only its followers' final reply waits here for the tails,
// so they get every line and then the end.
//
// A tail whose agent cannot send it any more (a new agent instance on that
// host, the host lost) is given up, and the followers are told where that
// output is.

export class OutputTails {
  /** job -> rank -> host of its tail. */
  private readonly open = new Map<string, Map<number, string>>();

  /** The exit of `rank` on `host` said its output follows. */
  expect(jobId: string, rank: number, host: string): void {
    let ranks = this.open.get(jobId);
    if (!ranks) this.open.set(jobId, (ranks = new Map()));
    ranks.set(rank, host);
  }

  /**
   * The `last` chunk of `rank`'s tail came from `host` (one not waited for is of a copy that moved away, or
   * a repeat); whether the job has no tail open any more.
   */
  ended(jobId: string, rank: number, host: string): boolean {
    const ranks = this.open.get(jobId);
    if (ranks?.get(rank) !== host) return false;
    ranks.delete(rank);
    if (ranks.size === 0) this.open.delete(jobId);
    return !this.open.has(jobId);
  }

  /** Whether the job has a tail open. */
  has(jobId: string): boolean {
    return this.open.has(jobId);
  }

  /** The hosts whose agents send the job's tails (they too are paused while a follower is behind). */
  hostsOf(jobId: string): string[] {
    return [...this.byHost(jobId).keys()];
  }

  /** The job's open tails: host -> ranks. */
  byHost(jobId: string): Map<string, number[]> {
    const hosts = new Map<string, number[]>();
    for (const [rank, host] of this.open.get(jobId) ?? []) hosts.set(host, [...(hosts.get(host) ?? []), rank]);
    return hosts;
  }

  /** Gives up the tails `host` sends, but those `kept`: per job, the ranks given up. */
  dropHost(host: string, kept: (jobId: string, rank: number) => boolean = () => false): Map<string, number[]> {
    const dropped = new Map<string, number[]>();
    for (const [jobId, ranks] of this.open) {
      for (const [rank, h] of ranks) {
        if (h !== host || kept(jobId, rank)) continue;
        ranks.delete(rank);
        dropped.set(jobId, [...(dropped.get(jobId) ?? []), rank]);
      }
      if (ranks.size === 0) this.open.delete(jobId);
    }
    return dropped;
  }

  /** Whether `host` sends a tail. */
  hasHost(host: string): boolean {
    for (const ranks of this.open.values()) for (const h of ranks.values()) if (h === host) return true;
    return false;
  }

  /** The job's followers got their end: nothing of it is waited for any more. */
  forget(jobId: string): void {
    this.open.delete(jobId);
  }
}
