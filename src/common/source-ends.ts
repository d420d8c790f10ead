// The furthest byte seen of each source of rank output (one agent's following of one log file, and a
// stream), for those that may be handed the same bytes twice: a coordinator the agent sends again to
// after a lost session (coordinator/output-resends.ts), a `ferry run` the output is sent again to after
// its coordinator was replaced (cli/job-follower.ts). A chunk past that point (a gap: output that never
// arrived) is taken as it is.
import type { RankOutput_Stream } from '../gen/proto.js';

export class SourceEnds {
  /** "rank/stream/source" -> the furthest byte seen. */
  private readonly ends = new Map<string, number>();

  /** The part of `data` (starting at `offset` in `source`) not seen before; all of it when there is no source. */
  unseen(rank: number, stream: RankOutput_Stream, source: string, offset: number, data: Uint8Array): Uint8Array {
    if (!source) return data;
    const key = `${rank}/${stream}/${source}`;
    const end = this.ends.get(key) ?? 0;
    const chunkEnd = offset + data.length;
    if (chunkEnd > end) this.ends.set(key, chunkEnd);
    if (offset >= end) return data;
    return chunkEnd <= end ? data.subarray(0, 0) : data.subarray(end - offset);
  }
}
