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
// what an agent sends again to it is shown again (at most what was sent
// between the last acknowledged heartbeat and the crash).
import { RankOutput_Stream } from '../gen/proto.js';

export class OutputResends {
  /** job -> "rank/stream/source" -> the furthest byte passed on. */
  private readonly ends = new Map<string, Map<string, number>>();

  /** The part of `data` (starting at `offset` in `source`) not passed on before. */
  filter(jobId: string, rank: number, stream: RankOutput_Stream, source: string, offset: number, data: Uint8Array): Uint8Array {
    if (!source) return data;
    let job = this.ends.get(jobId);
    if (!job) {
      job = new Map();
      this.ends.set(jobId, job);
    }
    const key = `${rank}/${stream}/${source}`;
    const end = job.get(key) ?? 0;
    const chunkEnd = offset + data.length;
    if (chunkEnd > end) job.set(key, chunkEnd);
    if (offset >= end) return data;
    return chunkEnd <= end ? data.subarray(0, 0) : data.subarray(end - offset);
  }

  /** The job ended: its sources are done. */
  forget(jobId: string): void {
    this.ends.delete(jobId);
  }
}
