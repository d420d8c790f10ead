// An agent that lost its session with the coordinator sends its ranks' output
// again from the last point the coordinator acknowledged (agent/output-tailer.ts):
// what it sent into a connection that died is gone, and it cannot tell which
// bytes those were. When the coordinator is the same one, it had some of them
// already. Each chunk says where it starts in its source (one agent's
// following of one log file); the bytes of a source up to the furthest point
// passed on before are dropped here, the rest passed on. A chunk past that
// point (a gap: output that never arrived) is passed on as it is.
//
// A coordinator that crashed knows nothing of what its predecessor passed on:
// the agent sends it again what the followers had not taken (output-tailer.ts),
// and each follower writes each byte once (cli/job-follower.ts).
import type { RankOutput_Stream } from '../gen/proto.js';
import { SourceEnds } from '../common/source-ends.js';

export class OutputResends {
  /** job -> the furthest byte passed on of each of its sources. */
  private readonly ends = new Map<string, SourceEnds>();
  /**
   * job -> source -> the host that sends it now. A source is named after the agent that began it; an agent
   * restarted on that host goes on in it (output-tailer.ts: add), and is told what of it waits (untaken).
   */
  private readonly hosts = new Map<string, Map<string, string>>();

  /** The part of `data` (starting at `offset` in `source`, sent from `host`) not passed on before. */
  filter(jobId: string, rank: number, stream: RankOutput_Stream, source: string, offset: number, data: Uint8Array, host = ''): Uint8Array {
    if (!source) return data;
    if (host) {
      let hosts = this.hosts.get(jobId);
      if (!hosts) this.hosts.set(jobId, (hosts = new Map()));
      if (hosts.get(source) !== host) hosts.set(source, host);
    }
    let job = this.ends.get(jobId);
    if (!job) {
      job = new SourceEnds();
      this.ends.set(jobId, job);
    }
    return job.unseen(rank, stream, source, offset, data);
  }

  /** Whether `host` sends `source` (of a job not ended). */
  sentFrom(source: string, host: string): boolean {
    for (const hosts of this.hosts.values()) if (hosts.get(source) === host) return true;
    return false;
  }

  /**
   * The job ended: its sources are done. Which host sends which (sentFrom) is kept while `keepHosts` (its
   * followers still drain: a new coordinator must hear from the agents what they have not taken), until
   * forgetHosts.
   */
  forget(jobId: string, keepHosts = false): void {
    this.ends.delete(jobId);
    if (!keepHosts) this.hosts.delete(jobId);
  }

  /** The ended job's followers are done: its sources' hosts are no longer asked for. */
  forgetHosts(jobId: string): void {
    this.hosts.delete(jobId);
  }
}
